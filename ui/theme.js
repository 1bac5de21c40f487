// Light or dark: the reader's own choice (kept in this browser) or, until
// they make one, what the system prefers (`prefers-color-scheme`). The
// choice is `data-theme` on <html>, which style.css's colours follow;
// Monaco follows through `onThemeChange`.

const KEY = "hero_logic_theme";
const listeners = [];
const systemDark = window.matchMedia("(prefers-color-scheme: dark)");

/** "light" or "dark": the choice kept, or the system's. */
export function currentTheme() {
  const chosen = localStorage.getItem(KEY);
  if (chosen === "light" || chosen === "dark") return chosen;
  return systemDark.matches ? "dark" : "light";
}

/** Call `listener(theme)` now and whenever the theme changes. */
export function onThemeChange(listener) {
  listeners.push(listener);
  listener(currentTheme());
}

function apply() {
  const theme = currentTheme();
  document.documentElement.dataset.theme = theme;
  const toggle = document.getElementById("theme-toggle");
  if (toggle) {
    toggle.textContent = theme === "dark" ? "☀ light" : "☾ dark";
    toggle.title = `Switch to the ${theme === "dark" ? "light" : "dark"} theme`;
  }
  for (const listener of listeners) listener(theme);
}

/** Switch to the other theme, and keep that choice. */
export function toggleTheme() {
  localStorage.setItem(KEY, currentTheme() === "dark" ? "light" : "dark");
  apply();
}

systemDark.addEventListener("change", apply);
apply();
