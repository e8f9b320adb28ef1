// The keys page: copy the new key, and confirm before revoking.
import "./copy.js";

for (const form of document.querySelectorAll("form[data-confirm]")) {
  form.addEventListener("submit", (event) => {
    if (!window.confirm(form.dataset.confirm)) event.preventDefault();
  });
}
document.querySelector("[data-secret]")?.select();
