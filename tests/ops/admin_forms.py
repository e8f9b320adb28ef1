"""Submit an admin change form the way a browser would: every field as the page rendered it, plus the edits."""

from __future__ import annotations

from html.parser import HTMLParser


class _FormFields(HTMLParser):
    def __init__(self, form_id: str):
        super().__init__()
        self.form_id = form_id
        self.inside = False
        self.data: dict[str, list[str]] = {}
        self._select: str | None = None
        self._textarea: str | None = None

    def _add(self, name: str, value: str) -> None:
        self.data.setdefault(name, []).append(value)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.inside = attrs.get("id") == self.form_id
        if not self.inside or ("name" not in attrs and tag != "option"):
            return
        if tag == "input":
            kind = attrs.get("type", "text")
            if kind in ("submit", "button", "file") or (kind in ("checkbox", "radio") and "checked" not in attrs):
                return
            self._add(attrs["name"], attrs.get("value", "on" if kind == "checkbox" else ""))
        elif tag == "select":
            self._select = attrs["name"]
        elif tag == "option" and self._select and "selected" in attrs:
            self._add(self._select, attrs.get("value", ""))
        elif tag == "textarea":
            self._textarea = attrs["name"]
            self._add(self._textarea, "")

    def handle_data(self, data):
        if self._textarea:
            value = self.data[self._textarea][-1]
            self.data[self._textarea][-1] = value + (data[1:] if not value and data.startswith("\n") else data)

    def handle_endtag(self, tag):
        if tag == "form":
            self.inside = False
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None


def change_form_data(client, page: str, form_id: str, /, **edits) -> dict:
    """The fields of the admin form at `page`, as rendered, with `edits` applied (None removes a field)."""
    parser = _FormFields(form_id)
    parser.feed(client.get(page).content.decode())
    data = {name: values if len(values) > 1 else values[0] for name, values in parser.data.items()}
    for name, value in edits.items():
        if value is None:
            data.pop(name, None)
        else:
            data[name] = value
    return data
