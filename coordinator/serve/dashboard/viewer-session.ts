// The viewer's credential in the browser (viewer-access.ts has the server's
// side and why it works this way). The dashboard link carries the viewer
// token in its fragment (`/#view=...`), which a browser never sends; the
// page moves it to this tab's sessionStorage and out of the address bar (as
// /join does with its token), then trades it by a POST with an
// Authorization header for a short-lived HttpOnly cookie, which GET / and
// the EventSource of /live carry.
import { secretFromLink } from '../../../worker/browser/link-secret.js';

const TOKEN_KEY = 'dptrain.view';
/** Where the token is traded for the cookie (viewer-access.ts SESSION_PATH). */
const SESSION_PATH = '/viewer-session';

/** The viewer token of this tab ('' for none), moved from the link's fragment if it has one. */
export function viewerToken(): string {
  return secretFromLink('view', TOKEN_KEY);
}

/** The token was refused: this tab forgets it. */
export function forgetViewerToken(): void {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** Trades the token for the session cookie: 'ok', 'refused' (a wrong or old link) or 'unreachable'. */
export async function signIn(token: string): Promise<'ok' | 'refused' | 'unreachable'> {
  try {
    const res = await fetch(SESSION_PATH, { method: 'POST', headers: { authorization: `Bearer ${token}` }, credentials: 'same-origin', cache: 'no-store' });
    return res.ok ? 'ok' : res.status === 401 ? 'refused' : 'unreachable';
  } catch {
    return 'unreachable';
  }
}
