// A secret that a link carries in its fragment (`/join#token=...`,
// `/#view=...`): a browser never sends the fragment to any server, so it
// stays out of requests, logs and Referer headers. The page moves it to
// this tab's sessionStorage (kept across reloads, gone with the tab) and
// out of the address bar, so it is not in the history either, nor shared
// by a screenshot or a copied address.

/** The secret `param` of the link's fragment, moved to sessionStorage under `key`; then whatever the tab holds there ('' for none). */
export function secretFromLink(param: string, key: string): string {
  const params = new URLSearchParams(location.hash.slice(1));
  const fromLink = params.get(param);
  if (fromLink !== null) {
    sessionStorage.setItem(key, fromLink);
    history.replaceState(null, '', `${location.pathname}${location.search}`);
  }
  return sessionStorage.getItem(key) ?? '';
}
