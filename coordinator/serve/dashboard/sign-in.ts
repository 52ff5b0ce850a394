// The page a browser gets, with a 401, at `/` without the viewer
// credential: it signs in with the token of the link's fragment (or of
// this tab's sessionStorage) and loads the dashboard; without a token, or
// with a refused one, it says what to ask the organizer for.
import { forgetViewerToken, signIn, viewerToken } from './viewer-session.js';

const message = document.getElementById('sign-in-message')!;

function say(state: string, text: string): void {
  message.dataset.state = state;
  message.textContent = text;
}

async function start(): Promise<void> {
  const token = viewerToken();
  if (token === '') return; // the page's own text says what to do
  say('signing-in', 'Signing in…');
  const outcome = await signIn(token);
  if (outcome === 'ok') {
    location.reload();
  } else if (outcome === 'refused') {
    forgetViewerToken();
    say('refused', 'This viewer link is not valid for this run (a mistyped link, or the coordinator was restarted with another viewer token): ask the organizer for the current one.');
  } else {
    say('unreachable', 'The coordinator cannot be reached just now; reload the page to try again.');
  }
}

void start();
// A link pasted into this very tab changes the fragment only: no new page load.
window.addEventListener('hashchange', () => void start());
