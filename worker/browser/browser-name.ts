// How a tab names itself to the coordinator (the `host` of its hello), and
// the volunteer page shows it, so a volunteer reads exactly what is sent:
// "Chrome 131 on Linux x86_64". The coordinator's log shows it; viewers of
// the dashboard see only the family ("Chrome", coordinator/serve/live/viewer-view.ts).

/** "Chrome 131 on Linux x86_64", from a page's or a worker's navigator. */
export function browserName(nav: { userAgent: string; platform: string }): string {
  const m = /(Firefox|Edg|OPR|Chrome|Version)\/(\d+)/.exec(nav.userAgent);
  const name = m === null ? 'a browser' : `${m[1] === 'Version' ? 'Safari' : m[1] === 'Edg' ? 'Edge' : m[1] === 'OPR' ? 'Opera' : m[1]} ${m[2]}`;
  return `${name} on ${nav.platform || 'unknown'}`.slice(0, 256);
}
