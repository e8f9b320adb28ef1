from django.core.management.base import BaseCommand

from ops.doctor import FAIL, WARN, run_doctor


class Command(BaseCommand):
    help = "Check the database, Redis, workers, model files and settings, and say what to fix."

    def handle(self, *args, **options):
        findings = run_doctor()
        style = {FAIL: self.style.ERROR, WARN: self.style.WARNING}
        for finding in findings:
            line = f"{finding.level:<4} {finding.area:<9} {finding.message}"
            if finding.fix and finding.level != "ok":
                line += f"\n               -> {finding.fix}"
            self.stdout.write(style.get(finding.level, self.style.SUCCESS)(line))
        failures = sum(1 for f in findings if f.level == FAIL)
        if failures:
            self.stderr.write(f"{failures} problem(s) to fix.")
            raise SystemExit(1)
        self.stdout.write("All checks pass.")
