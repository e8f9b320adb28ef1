// Copy text to the clipboard and say so on the button for a moment.
export async function copyText(text, button) {
  const label = button.textContent;
  try {
    await navigator.clipboard.writeText(text);
    button.textContent = "Copied";
  } catch {
    button.textContent = "Copy failed: select the text instead";
  }
  setTimeout(() => {
    button.textContent = label;
  }, 1500);
}

// Any element with data-copy-from="<id>" copies that element's text.
for (const button of document.querySelectorAll("[data-copy-from]")) {
  button.addEventListener("click", () => {
    const source = document.getElementById(button.dataset.copyFrom);
    copyText(source.value ?? source.textContent, button);
  });
}
