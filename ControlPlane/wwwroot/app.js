// The console's few browser-side helpers.
window.airlock = {
  // Dark mode is a cookie, so the server renders the next page dark from its first byte (no light flash).
  setDarkMode: dark => { document.cookie = `airlock.dark=${dark ? 'true' : 'false'}; path=/; max-age=31536000; samesite=strict`; },
};
