// The console's shell: sign-in, the site it works on, and which screen shows (by the URL's
// fragment: #/conversations, #/conversations/<id>, #/settings). The screens are settings.js and
// conversations.js; everything they show comes from the public API.
import { api, ApiError, describeError, enc, session } from './api.js';
import { announce, clear, field, h } from './dom.js';
import { showConversations } from './conversations.js';
import { showSettings } from './settings.js';

const main = document.getElementById('main');
let current = null;  // the screen showing: { stop() }

function signedIn() {
  const s = session.load();
  return s && s.verified && s.token && s.site ? s : null;
}

function showSignIn(message) {
  document.getElementById('nav').hidden = true;
  const token = h('input', { type: 'password', autocomplete: 'off', required: true, spellcheck: 'false' });
  const site = h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', pattern: '[a-z0-9][a-z0-9-]{0,62}' });
  const agentName = h('input', { type: 'text', autocomplete: 'name', value: 'Console agent', required: true, maxlength: 128 });
  const agentId = h('input', { type: 'text', autocomplete: 'off', value: 'console', required: true, maxlength: 128 });
  const error = h('p', { class: 'error', role: 'alert' }, message || '');
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const form = h('form', { class: 'card signin', 'aria-labelledby': 'signin-title' },
    h('h1', { id: 'signin-title' }, 'Sign in to the wachat console'),
    field('Access token', token, 'A site token (wct_…) or the admin token. It stays in this browser tab only.'),
    field('Site id', site, 'Required with a site token; with the admin token leave it empty to choose a site.'),
    field('Your name (shown to customers as the sender)', agentName),
    field('Your agent id', agentId),
    error, submit);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    submit.disabled = true;
    clear(error);
    const value = { token: token.value.trim(), site: site.value.trim(), agentName: agentName.value.trim(), agentId: agentId.value.trim() };
    session.save(value);
    try {
      await verifySignIn(value);
    } catch (err) {
      session.clear();
      clear(error, describeSignInError(err, value));
      submit.disabled = false;
    }
  });
  clear(main, form);
  token.focus();
}

function describeSignInError(err, value) {
  if (err instanceof ApiError && err.status === 401) return 'This token is not known to wachat.';
  if (err instanceof ApiError && err.status === 404) return `The token does not reach a site called "${value.site}".`;
  if (err instanceof ApiError && err.status === 403) return 'This is a site token: enter the site id it belongs to.';
  return describeError(err);
}

// Which kind of token this is decides the next step: a site token must name its site; the admin
// token may choose one.
async function verifySignIn(value) {
  if (value.site) {
    await api(`/api/sites/${enc(value.site)}/whatsapp/status`);
    value.isAdmin = await isAdmin();
    value.verified = true;
    session.save(value);
    return route();
  }
  const { body } = await api('/api/sites');  // 403 for a site token
  value.isAdmin = true;
  value.verified = true;
  session.save(value);
  showSitePicker(body.sites);
}

async function isAdmin() {
  try {
    await api('/api/sites');
    return true;
  } catch {
    return false;
  }
}

function showSitePicker(sites) {
  const select = h('select', { required: true },
    sites.map((s) => h('option', { value: s.id }, `${s.name} (${s.id})`)));
  const pick = h('form', { class: 'card signin', 'aria-labelledby': 'pick-title' },
    h('h1', { id: 'pick-title' }, 'Choose a site'),
    sites.length ? field('Site', select) : h('p', {}, 'There are no sites yet: create the first one below.'),
    h('button', { type: 'submit', class: 'primary', disabled: !sites.length }, 'Open'));
  pick.addEventListener('submit', (e) => {
    e.preventDefault();
    openSite(select.value);
  });

  // The admin token may also create a site (POST /api/sites).
  const id = h('input', { type: 'text', required: true, pattern: '[a-z0-9][a-z0-9-]{0,62}', autocomplete: 'off', spellcheck: 'false' });
  const name = h('input', { type: 'text', required: true, maxlength: 200, autocomplete: 'off' });
  const error = h('p', { class: 'error', role: 'alert' });
  const create = h('form', { class: 'card signin', 'aria-labelledby': 'create-title' },
    h('h2', { id: 'create-title' }, 'Create a site'),
    field('Site id', id, 'Lower-case letters, digits and dashes, e.g. acme-shop.'),
    field('Name', name), error,
    h('button', { type: 'submit' }, 'Create site'));
  create.addEventListener('submit', async (e) => {
    e.preventDefault();
    clear(error);
    try {
      await api('/api/sites', { method: 'POST', body: { id: id.value.trim(), name: name.value.trim() } });
      openSite(id.value.trim());
    } catch (err) {
      clear(error, describeError(err));
    }
  });
  clear(main, pick, create);
}

function openSite(site) {
  const s = session.load();
  s.site = site;
  session.save(s);
  if (location.hash === '#/settings') route();
  else location.hash = '#/settings';  // the hashchange routes
}

function signOut(message) {
  current?.stop();
  current = null;
  session.clear();
  // Not `location.hash = ''`: its hashchange would route again and wipe the message.
  history.replaceState(null, '', location.pathname);
  showSignIn(message);
}

async function route() {
  const s = signedIn();
  if (!s) {
    current?.stop();
    current = null;
    return showSignIn();
  }
  const nav = document.getElementById('nav');
  nav.hidden = false;
  clear(document.getElementById('who'), `${s.agentName} · site ${s.site}${s.isAdmin ? ' (admin)' : ''}`);
  const hash = location.hash || '#/conversations';
  const [, screen, rawId] = hash.split('/');
  let id = null;
  try {
    id = rawId ? decodeURIComponent(rawId) : null;
  } catch {
    id = null;  // a malformed link shows the list
  }
  for (const link of nav.querySelectorAll('a')) {
    link.toggleAttribute('aria-current', link.getAttribute('href') === `#/${screen}`);
    if (link.getAttribute('href') === `#/${screen}`) link.setAttribute('aria-current', 'page');
  }
  announce('');
  if (screen === 'settings') {
    current?.stop();
    current = showSettings(main, s);
  } else if (current?.kind === 'conversations') {
    current.open(id);
  } else {
    current?.stop();
    current = showConversations(main, s, id);
  }
}

document.getElementById('sign-out').addEventListener('click', () => signOut());
window.addEventListener('hashchange', route);
// A token refused after sign-in was revoked: back to the sign-in (during sign-in the form says it).
window.addEventListener('wachat:unauthorized', () => {
  if (session.load()?.verified) signOut('The token was refused (revoked or unknown). Sign in again.');
});
route();
