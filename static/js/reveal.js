// Copy a revealed value to the clipboard (no inline script: CSP).
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy-target]");
  if (!button) return;
  const input = document.getElementById(button.dataset.copyTarget);
  const status = document.querySelector("[data-copy-status]");
  if (!input) return;
  const done = (text) => { if (status) status.textContent = text; };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(input.value).then(() => done("Copied."), () => done("Select the value and copy it."));
  } else {
    input.select();
    done(document.execCommand("copy") ? "Copied." : "Select the value and copy it.");
  }
});
