// The conversation view (the seed's Task 5): the site's WhatsApp conversations, live over the
// event stream, and one conversation with its 24-hour window, its messages (media, replies,
// reactions, delivery ticks) and the composer, which turns to the template dialog when the
// window is closed.
import { api, ApiError, describeError, enc } from './api.js';
import { announce, clear, field, formatBytes, formatDuration, formatTime, h } from './dom.js';
import { LiveEvents } from './events.js';
import { renderMessage } from './message_view.js';
import { openTemplateDialog } from './template_dialog.js';

export function clientMessageId() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  return `console-${Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('')}`;
}

function byTime(a, b) {
  const ta = Date.parse(a.created_at) || 0;
  const tb = Date.parse(b.created_at) || 0;
  if (ta !== tb) return ta - tb;
  return a.id.length - b.id.length || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

export function visitorLabel(v) {
  if (!v) return 'Unknown customer';
  return v.name || v.whatsapp_phone || (v.whatsapp_user_id ? `Username user ${v.whatsapp_user_id}` : `Visitor ${v.id}`);
}

export function showConversations(root, s, initialId) {
  const site = s.site;
  const conversations = new Map();  // id → conversation
  let filter = '';
  let openId = null;
  let view = null;  // the open conversation's view
  let siteStatus = null;

  const list = h('ul', { class: 'conv-list', id: 'conversation-list', 'aria-label': 'Conversations' });
  // The newest conversations first; `more` follows the list's cursor to older ones.
  let listCursor = null;
  const more = h('button', { type: 'button', class: 'small', id: 'more-conversations', hidden: true }, 'Show older conversations');
  more.addEventListener('click', () => loadList(listCursor));
  const liveState = h('span', { class: 'live', id: 'live-state', role: 'status' }, 'Connecting…');
  const statusFilter = h('select', {},
    [['', 'All'], ['pending', 'Pending'], ['active', 'Active'], ['closed', 'Closed']].map(([v, t]) => h('option', { value: v }, t)));
  statusFilter.addEventListener('change', () => {
    filter = statusFilter.value;
    loadList(null);
  });
  const sidebar = h('section', { class: 'sidebar', 'aria-labelledby': 'conv-title' },
    h('div', { class: 'sidebar-head' }, h('h1', { id: 'conv-title' }, 'Conversations'), liveState),
    field('Show', statusFilter), list, more);
  const pane = h('section', { class: 'pane', id: 'conversation-pane', 'aria-label': 'Conversation' },
    h('p', { class: 'empty' }, 'Choose a conversation.'));
  const layout = h('div', { class: 'conversations' }, sidebar, pane);
  clear(root, layout);

  // The stream starts at the newest event when it opens: whatever was committed between the
  // first reads and that moment is read again once it is live (upserts make that harmless).
  let caughtUp = false;
  const events = new LiveEvents(site, onEvent, (state) => {
    clear(liveState, state === 'live' ? 'Live' : 'Reconnecting…');
    liveState.dataset.state = state;
    if (state === 'live' && !caughtUp) {
      caughtUp = true;
      loadList(null);
      view?.reload();
    }
  });

  async function loadSiteStatus() {
    try {
      ({ body: siteStatus } = await api(`/api/sites/${enc(site)}/whatsapp/status`));
    } catch {
      siteStatus = null;
    }
    view?.refreshWarnings();
  }

  async function loadList(cursor) {
    const q = new URLSearchParams({ channel: 'whatsapp', limit: '50' });
    if (filter) q.set('status', filter);
    if (cursor) q.set('cursor', cursor);
    try {
      const { body } = await api(`/api/sites/${enc(site)}/conversations?${q}`);
      if (!cursor) conversations.clear();
      for (const c of body.conversations) conversations.set(c.id, c);
      listCursor = body.next_cursor;
      more.hidden = !listCursor;
      renderList();
    } catch (err) {
      clear(list, h('li', { class: 'error' }, describeError(err)));
    }
  }

  function renderList() {
    const sorted = [...conversations.values()]
      .filter((c) => !filter || c.status === filter)
      .sort((a, b) => (Date.parse(b.last_message_at || b.created_at) || 0) - (Date.parse(a.last_message_at || a.created_at) || 0));
    clear(list, sorted.length ? sorted.map(listItem) : h('li', { class: 'empty' }, 'No conversations yet.'));
  }

  function listItem(c) {
    const unread = c.unread_count > 0
      ? h('span', { class: 'unread', 'aria-label': `${c.unread_count} unread` }, String(c.unread_count)) : null;
    return h('li', { dataset: { id: c.id } },
      h('a', { href: `#/conversations/${enc(c.id)}`, class: 'conv-item', 'aria-current': c.id === openId ? 'true' : null },
        h('span', { class: 'badge-wa', title: 'WhatsApp' }, h('span', { 'aria-hidden': 'true' }, 'WA'), h('span', { class: 'sr-only' }, 'WhatsApp')),
        h('span', { class: 'conv-main' },
          h('span', { class: 'conv-name' }, visitorLabel(c.visitor)),
          h('span', { class: 'conv-meta' },
            `${c.status} · ${c.assigned_agent_id ? `assigned to ${c.assigned_agent_id}` : 'unassigned'} · ${formatTime(c.last_message_at || c.created_at)}`)),
        unread));
  }

  function upsert(c) {
    if (!c || !c.id) return;
    conversations.set(c.id, c);
    renderList();
    if (c.id === openId) view?.setConversation(c);
  }

  async function refreshConversation(id) {
    try {
      const { body } = await api(`/api/conversations/${enc(id)}`);
      upsert(body);
    } catch {
      // The next event or reload brings it.
    }
  }

  const pending = new Set();
  function refreshSoon(id) {
    if (pending.has(id)) return;
    pending.add(id);
    setTimeout(() => {
      pending.delete(id);
      refreshConversation(id);
    }, 150);
  }

  function onEvent(type, data) {
    if (data.conversation) upsert(data.conversation);
    if (data.message) {
      if (data.conversation_id === openId) view?.upsertMessage(data.message);
      // The list's unread counts and order, and the open conversation's window, move with it.
      refreshSoon(data.conversation_id);
    } else if (!data.conversation && data.conversation_id) {
      refreshSoon(data.conversation_id);
    }
    if (type === 'notification' && data.notification) {
      announce(data.notification.message || data.notification.title || 'New notification', 'info');
    }
  }

  async function open(id) {
    if (id === openId && view) return;
    view?.stop();
    view = null;
    openId = id;
    layout.classList.toggle('has-open', Boolean(id));
    renderList();
    if (!id) {
      clear(pane, h('p', { class: 'empty' }, 'Choose a conversation.'));
      return;
    }
    view = conversationView(pane, s, id, () => siteStatus, upsert);
  }

  loadSiteStatus();
  loadList(null);
  events.start();
  open(initialId);

  return {
    kind: 'conversations',
    open,
    stop() {
      events.stop();
      view?.stop();
    },
  };
}

function conversationView(pane, s, id, siteStatus, onConversation) {
  const messages = new Map();
  let conversation = null;
  let nextCursor = null;
  let replyTo = null;
  let stopped = false;
  let expiresAt = 0;  // performance.now() time the window closes

  const title = h('h2', { id: 'conv-heading' }, 'Loading…');
  const identity = h('p', { class: 'identity' });
  const windowBadge = h('p', { class: 'window', id: 'window-indicator', role: 'status' });
  const statusSelect = h('select', {}, ['pending', 'active', 'closed'].map((v) => h('option', { value: v }, v)));
  const assignSelect = h('select', {}, h('option', { value: '' }, 'Unassigned'));
  const log = h('ol', { class: 'messages', id: 'messages', role: 'log', 'aria-live': 'polite', 'aria-label': 'Messages' });
  const earlier = h('button', { type: 'button', class: 'small', hidden: true }, 'Load earlier messages');
  const warnings = h('div', { class: 'warnings', id: 'send-warnings', role: 'alert' });
  const replyBar = h('div', { class: 'reply-bar', hidden: true });
  const text = h('textarea', { rows: 2, maxlength: 4096, id: 'composer-text', placeholder: 'Write a reply…' });
  const send = h('button', { type: 'submit', class: 'primary', id: 'composer-send' }, 'Send');
  const templateButton = h('button', { type: 'button', id: 'composer-template' }, 'Send a template…');
  // An image or document to send: uploaded to wachat first, then sent by its media_id with the
  // text as its caption.
  const fileInput = h('input', { type: 'file', id: 'composer-file', accept: 'image/jpeg,image/png,application/pdf,.pdf,.doc,.docx,.xls,.xlsx,.txt,.csv,.zip' });
  const attachment = h('div', { class: 'attachment', id: 'composer-attachment', role: 'status', 'aria-live': 'polite' });
  let attached = null;  // the upload's answer: { id, type, file_name, file_size }
  const composer = h('form', { class: 'composer', 'aria-label': 'Reply' },
    replyBar, warnings, field('Your reply', text),
    h('div', { class: 'actions' }, send, templateButton, h('label', { class: 'file-button' }, 'Attach an image or document ', fileInput)),
    attachment);

  const back = h('a', { href: '#/conversations', class: 'back' }, '← All conversations');
  clear(pane, back,
    h('header', { class: 'conv-head' }, h('div', {}, title, identity, windowBadge),
      h('div', { class: 'conv-controls' }, field('Status', statusSelect), field('Assigned agent', assignSelect))),
    earlier, log, composer);

  statusSelect.addEventListener('change', () => patch({ status: statusSelect.value }));
  assignSelect.addEventListener('change', () => patch({ assigned_agent_id: assignSelect.value || null }));
  earlier.addEventListener('click', () => loadMessages(nextCursor));
  templateButton.addEventListener('click', () => openTemplateDialog({ s, conversation, onSent: upsertMessage }));
  text.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey) {
      e.preventDefault();
      composer.requestSubmit();
    }
  });
  text.addEventListener('input', () => refreshWarnings());
  composer.addEventListener('submit', (e) => {
    e.preventDefault();
    sendText();
  });
  fileInput.addEventListener('change', () => attach(fileInput.files[0]));

  async function attach(file) {
    attached = null;
    if (!file) return clear(attachment);
    clear(attachment, `Uploading ${file.name}…`);
    try {
      const q = new URLSearchParams({ filename: file.name });
      const { body } = await api(`/api/sites/${enc(s.site)}/media?${q}`, { method: 'POST', file });
      attached = body.media;
      const remove = h('button', { type: 'button', class: 'link small' }, 'Remove');
      remove.addEventListener('click', () => {
        attached = null;
        fileInput.value = '';
        clear(attachment);
      });
      clear(attachment, `Attached: ${attached.file_name} (${attached.type}, ${formatBytes(attached.file_size)}); the text goes as its caption. `, remove);
    } catch (err) {
      fileInput.value = '';
      clear(attachment, h('span', { class: 'error' }, `Not attached: ${describeError(err)}`));
    }
  }

  async function patch(change) {
    try {
      const { body } = await api(`/api/conversations/${enc(id)}`, { method: 'PATCH', body: change });
      onConversation(body);
      announce('Conversation updated.', 'ok');
    } catch (err) {
      announce(describeError(err), 'error');
      if (conversation) setConversation(conversation);
    }
  }

  async function loadAgents() {
    try {
      const { body } = await api(`/api/sites/${enc(s.site)}/agents`);
      for (const a of body.agents) {
        assignSelect.append(h('option', { value: a.id }, `${a.name || a.id} (${a.status}, ${a.active_chats} chats)`));
      }
      if (conversation) assignSelect.value = conversation.assigned_agent_id || '';
    } catch {
      // Assignment stays as it is shown.
    }
  }

  function setConversation(c) {
    conversation = c;
    clear(title, visitorLabel(c.visitor));
    const v = c.visitor || {};
    clear(identity,
      v.whatsapp_phone ? h('span', {}, 'WhatsApp ', h('span', { class: 'mono' }, v.whatsapp_phone)) : null,
      !v.whatsapp_phone && v.whatsapp_user_id ? h('span', {}, 'WhatsApp username user ', h('span', { class: 'mono' }, v.whatsapp_user_id)) : null,
      v.marketing_opt_out ? h('span', { class: 'tag tag-warn' }, 'Opted out of marketing') : null);
    statusSelect.value = c.status;
    if ([...assignSelect.options].some((o) => o.value === (c.assigned_agent_id || ''))) {
      assignSelect.value = c.assigned_agent_id || '';
    }
    const w = c.window || { open: false, seconds_left: 0 };
    expiresAt = w.open ? performance.now() + w.seconds_left * 1000 : 0;
    tick();
  }

  function windowOpen() {
    return expiresAt > performance.now();
  }

  // The countdown, once a second; the composer follows the window.
  function tick() {
    if (!conversation) return;
    if (windowOpen()) {
      const left = (expiresAt - performance.now()) / 1000;
      windowBadge.dataset.state = 'open';
      clear(windowBadge, h('span', { class: 'tag tag-ok' }, '24-hour window open'), ' ',
        h('span', { class: 'countdown', id: 'window-countdown' }, formatDuration(left)), ' left');
    } else {
      windowBadge.dataset.state = 'closed';
      clear(windowBadge, h('span', { class: 'tag tag-closed', id: 'template-required' }, 'Template required'),
        ' The 24-hour window is closed: only an approved template can be sent.');
    }
    refreshWarnings();
  }
  const timer = setInterval(tick, 1000);

  // What would make a send fail, said before the agent sends.
  function refreshWarnings() {
    const st = siteStatus();
    const notes = [];
    let blockText = false;
    if (st && (!st.configured || !st.enabled)) {
      notes.push(`WhatsApp sending is ${st.configured ? 'switched off' : 'not set up'} for this site: sends will be refused. See WhatsApp settings.`);
      blockText = true;
    } else if (st?.last_check && !st.last_check.ok) {
      notes.push(`The last connection check failed (${st.last_check.error}); sends may fail.`);
    }
    const isOpen = windowOpen();
    if (conversation && !isOpen) {
      notes.push('The 24-hour window is closed: a text reply would be refused. Send a template instead.');
      blockText = true;
    } else if (isOpen && (expiresAt - performance.now()) < 5 * 60 * 1000) {
      notes.push(`The window closes in ${formatDuration((expiresAt - performance.now()) / 1000)}: after that only templates can be sent.`);
    }
    if (text.value.length > 4096) {
      notes.push('A WhatsApp text is at most 4,096 characters.');
      blockText = true;
    }
    const key = notes.join('|');
    if (warnings.dataset.key !== key) {
      warnings.dataset.key = key;
      clear(warnings, notes.map((n) => h('p', { class: 'notice warn' }, n)));
    }
    text.disabled = Boolean(conversation && !isOpen);
    fileInput.disabled = text.disabled;
    send.disabled = blockText;
    composer.dataset.mode = conversation && !isOpen ? 'template' : 'text';
    templateButton.classList.toggle('primary', Boolean(conversation && !isOpen));
  }

  async function loadConversation() {
    try {
      const { body } = await api(`/api/conversations/${enc(id)}`);
      if (stopped) return;
      onConversation(body);
      setConversation(body);
    } catch (err) {
      clear(title, err instanceof ApiError && err.status === 404 ? 'No such conversation' : describeError(err));
    }
  }

  async function loadMessages(cursor) {
    const q = new URLSearchParams({ limit: '50' });
    if (cursor) q.set('cursor', cursor);
    try {
      const { body } = await api(`/api/conversations/${enc(id)}/messages?${q}`);
      if (stopped) return;
      for (const m of body.messages) messages.set(m.id, m);
      nextCursor = body.next_cursor;
      earlier.hidden = !nextCursor;
      renderMessages(!cursor);
    } catch (err) {
      clear(log, h('li', { class: 'error' }, describeError(err)));
    }
  }

  function renderMessages(scroll) {
    const sorted = [...messages.values()].sort(byTime);
    clear(log, sorted.map(bubble));
    if (scroll) log.lastElementChild?.scrollIntoView({ block: 'end' });
  }

  function upsertMessage(m) {
    if (!m || m.conversation_id !== id) return;
    const isNew = !messages.has(m.id);
    messages.set(m.id, m);
    const existing = log.querySelector(`li[data-id="${CSS.escape(m.id)}"]`);
    if (existing && !isNew) {
      existing.replaceWith(bubble(m));
    } else {
      renderMessages(true);
      if (m.sender_type === 'visitor') markRead();
    }
    // A reply quoting this message shows its new text too.
    for (const other of messages.values()) {
      if (other.reply_to === m.id) log.querySelector(`li[data-id="${CSS.escape(other.id)}"]`)?.replaceWith(bubble(other));
    }
  }

  let readTimer = null;
  function markRead() {
    clearTimeout(readTimer);
    readTimer = setTimeout(async () => {
      if (document.visibilityState !== 'visible' || stopped) return;
      try {
        const { body } = await api(`/api/conversations/${enc(id)}/read`, { method: 'POST' });
        onConversation(body);
      } catch {
        // Unread stays; the next visit marks it.
      }
    }, 300);
  }

  function bubble(m) {
    return renderMessage(m, { id, messages, onReply: setReply, onReact: sendReaction, onUpdate: upsertMessage });
  }

  function setReply(m) {
    replyTo = m;
    const cancel = h('button', { type: 'button', class: 'link small' }, 'Cancel reply');
    cancel.addEventListener('click', () => {
      replyTo = null;
      replyBar.hidden = true;
    });
    clear(replyBar, h('span', {}, 'Replying to: ', h('q', {}, (m.content || `[${m.content_type}]`).slice(0, 120))), ' ', cancel);
    replyBar.hidden = false;
    text.focus();
  }

  async function sendText() {
    refreshWarnings();
    const body = text.value.trim();
    if ((!body && !attached) || send.disabled) {
      if (!body && !attached) announce('Write a message first.', 'info');
      return;
    }
    const payload = attached
      ? { type: attached.type, media_id: attached.id, sender_id: s.agentId, sender_name: s.agentName, client_message_id: clientMessageId() }
      : { type: 'text', text: body, sender_id: s.agentId, sender_name: s.agentName, client_message_id: clientMessageId() };
    if (attached && body) payload.caption = body;
    if (attached?.type === 'document') payload.filename = attached.file_name;
    if (replyTo) payload.reply_to = replyTo.id;
    send.disabled = true;
    try {
      const { body: answer } = await api(`/api/conversations/${enc(id)}/messages`, { method: 'POST', body: payload });
      text.value = '';
      replyTo = null;
      replyBar.hidden = true;
      attached = null;
      fileInput.value = '';
      clear(attachment);
      if (answer?.message) upsertMessage(answer.message);
    } catch (err) {
      if (err.body?.message) {
        // Stored (failed, to be retried from its bubble): the composer is free again.
        text.value = '';
        attached = null;
        fileInput.value = '';
        clear(attachment);
        upsertMessage(err.body.message);
      }
      announce(describeError(err), 'error');
      if (err.code === 'window_closed') loadConversation();
    }
    refreshWarnings();
    text.focus();
  }

  async function sendReaction(m, emoji) {
    try {
      const { body } = await api(`/api/conversations/${enc(id)}/messages`, {
        method: 'POST', body: { type: 'reaction', message_id: m.id, emoji, sender_id: s.agentId, sender_name: s.agentName } });
      if (body?.message) upsertMessage(body.message);
    } catch (err) {
      announce(describeError(err), 'error');
    }
  }

  loadConversation().then(() => {
    loadAgents();
    markRead();
  });
  loadMessages(null);

  return {
    setConversation,
    upsertMessage,
    refreshWarnings,
    reload() {
      loadConversation();
      loadMessages(null);
    },
    stop() {
      stopped = true;
      clearInterval(timer);
      clearTimeout(readTimer);
    },
  };
}
