// The WhatsApp settings page (the seed's Task 4): where the site stands, the five steps of
// connecting a number, the credentials form with Test connection and Save, and once connected
// the phone's details, the welcome template, the template list, a test message, the usage the
// site's messages were priced at, and disconnecting.
import { api, ApiError, describeError, enc } from './api.js';
import { announce, clear, field, formatTime, h } from './dom.js';

const META_DOCS = {
  setup: 'https://developers.facebook.com/docs/whatsapp/cloud-api/get-started',
  webhooks: 'https://developers.facebook.com/docs/whatsapp/cloud-api/guides/set-up-webhooks',
  window: 'https://developers.facebook.com/docs/whatsapp/cloud-api/guides/send-messages#customer-service-windows',
  pricing: 'https://developers.facebook.com/docs/whatsapp/pricing',
};

function external(href, text) {
  return h('a', { href, target: '_blank', rel: 'noopener noreferrer' }, text, h('span', { class: 'sr-only' }, ' (opens Meta’s documentation in a new tab)'));
}

// What the status says, in one word and a sentence.
export function describeStatus(st) {
  if (!st.configured) return { state: 'off', label: 'Not connected', text: 'No WhatsApp number is connected to this site yet.' };
  if (!st.enabled) return { state: 'off', label: 'Disabled', text: 'Credentials are saved but sending is switched off; incoming messages are still stored.' };
  if (st.last_check && !st.last_check.ok) return { state: 'bad', label: 'Connection problem', text: `The last check at ${formatTime(st.last_check.at)} failed: ${st.last_check.error}` };
  return { state: 'ok', label: 'Connected', text: st.last_check ? `Checked ${formatTime(st.last_check.at)}.` : 'Saved; not checked yet.' };
}

export function showSettings(root, s) {
  const base = `/api/sites/${enc(s.site)}/whatsapp`;
  let stopped = false;
  const page = h('section', { class: 'settings', 'aria-labelledby': 'settings-title' });
  clear(root, page);

  async function load() {
    let status;
    try {
      ({ body: status } = await api(`${base}/status`));
    } catch (err) {
      clear(page, h('p', { class: 'error', role: 'alert' }, describeError(err)));
      return;
    }
    if (stopped) return;
    render(status);
  }

  function render(st) {
    const d = describeStatus(st);
    const indicator = h('p', { class: `status status-${d.state}`, id: 'wa-status', role: 'status' },
      h('span', { class: 'dot', 'aria-hidden': 'true' }), h('strong', {}, d.label), ' — ', d.text);
    const connected = st.configured && st.enabled;
    clear(page,
      h('h1', { id: 'settings-title' }, 'WhatsApp settings'),
      indicator,
      guide(st),
      credentialsForm(st),
      connected ? connectedPanel(st) : null,
      windowAndPricing());
  }

  function guide(st) {
    const step = (done, title, ...body) => h('li', { class: done ? 'done' : '' },
      h('strong', {}, title), done ? h('span', { class: 'sr-only' }, ' (done)') : null, h('div', {}, ...body));
    return h('section', { class: 'card', 'aria-labelledby': 'guide-title' },
      h('h2', { id: 'guide-title' }, 'Set-up guide'),
      h('ol', { class: 'guide' },
        step(st.configured, 'Create a Meta app with the WhatsApp product',
          'In Meta for Developers create a Business app, add WhatsApp, and connect your WhatsApp Business Account. ', external(META_DOCS.setup, 'Getting started')),
        step(Boolean(st.phone_number_id), 'Add the phone number',
          'Under WhatsApp → API Setup, add and verify the number customers will write to. Copy its phone number id and the WhatsApp Business Account id into the form below.'),
        step(st.credential_source !== 'none', 'Create a permanent access token',
          'In Business Settings create a system user, give it the app with the whatsapp_business_messaging and whatsapp_business_management permissions, and generate a token. Temporary tokens stop working after a day.'),
        step(Boolean(st.verify_token) && st.configured, 'Register the webhook',
          'Under WhatsApp → Configuration, enter the webhook URL and verify token shown below, verify, and subscribe to the “messages” field (and the template fields for live template status). ', external(META_DOCS.webhooks, 'Webhooks')),
        step(st.configured && st.enabled && st.last_check?.ok, 'Save, test and send a test message',
          'Save the form (Meta checks the credentials first), then send yourself a test message from this page.')));
  }

  function credentialsForm(st) {
    const phone = h('input', { type: 'tel', autocomplete: 'off', value: st.phone_number || '', placeholder: '+15550100' });
    const phoneId = h('input', { type: 'text', autocomplete: 'off', value: st.phone_number_id || '', required: true, inputmode: 'numeric' });
    const waba = h('input', { type: 'text', autocomplete: 'off', value: st.business_account_id || '', required: true, inputmode: 'numeric' });
    const token = h('input', { type: 'password', autocomplete: 'new-password', spellcheck: 'false',
      placeholder: st.access_token ? `Saved: ${st.access_token} — leave empty to keep it` : 'EAAB…' });
    const receipts = h('select', {},
      [['on_receipt', 'When a message arrives'], ['on_agent_view', 'When an agent opens the conversation'], ['off', 'Never']]
        .map(([v, t]) => h('option', { value: v, selected: st.read_receipts === v }, t)));
    const autoAssign = h('input', { type: 'checkbox', checked: Boolean(st.auto_assign) });
    const enabled = h('input', { type: 'checkbox', checked: st.configured ? Boolean(st.enabled) : true });
    const welcome = h('select', {}, h('option', { value: '' }, st.welcome_template ? `${st.welcome_template} (saved)` : 'No welcome message'));
    if (st.welcome_template) welcome.firstChild.value = st.welcome_template;
    const result = h('div', { id: 'settings-result', role: 'status', 'aria-live': 'polite' });
    const webhook = h('input', { type: 'text', readonly: true, value: st.webhook_url });
    const verify = h('input', { type: 'text', readonly: true, value: st.verify_token || '' });
    const save = h('button', { type: 'submit', class: 'primary' }, 'Save');
    const test = h('button', { type: 'button' }, 'Test connection');

    if (st.configured) fillWelcomeOptions(welcome, st.welcome_template);

    test.addEventListener('click', async () => {
      test.disabled = true;
      clear(result, 'Asking Meta…');
      try {
        const { body } = await api(`${base}/test`, { method: 'POST' });
        clear(result, body.ok ? phoneSummary(body.phone, 'Connection works.')
          : h('p', { class: 'error' }, `Meta refused: ${body.error?.message || 'unknown error'}`, graphLine(body.error?.graph)));
      } catch (err) {
        clear(result, h('p', { class: 'error' }, describeError(err)));
      }
      test.disabled = false;
    });

    const form = h('form', { class: 'card', 'aria-labelledby': 'creds-title', novalidate: true },
      h('h2', { id: 'creds-title' }, 'Credentials'),
      h('div', { class: 'grid2' },
        field('Phone number', phone, 'As customers see it, in international format.'),
        field('Phone number id', phoneId),
        field('WhatsApp Business Account id', waba),
        field('Access token', token, 'Stored encrypted; only its first and last four characters are ever shown.')),
      h('div', { class: 'grid2' },
        copyField('Webhook URL to register at Meta', webhook),
        copyField('Verify token', verify)),
      h('div', { class: 'grid2' },
        field('Send read receipts', receipts),
        field('Welcome template (sent when a new conversation starts)', welcome)),
      h('div', { class: 'checks' },
        h('label', {}, autoAssign, ' Assign new conversations to an online agent automatically'),
        h('label', {}, enabled, ' Sending enabled')),
      h('div', { class: 'actions' }, save, test),
      result);

    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      if (!phoneId.value.trim() || !waba.value.trim()) {
        clear(result, h('p', { class: 'error', role: 'alert' }, 'Phone number id and WhatsApp Business Account id are required.'));
        return;
      }
      const body = {
        phone_number: phone.value.trim(),
        phone_number_id: phoneId.value.trim(),
        business_account_id: waba.value.trim(),
        read_receipts: receipts.value,
        auto_assign: autoAssign.checked,
        enabled: enabled.checked,
      };
      if (token.value.trim()) body.access_token = token.value.trim();
      if (welcome.value) body.welcome_template = welcome.value;
      save.disabled = true;
      clear(result, 'Checking the credentials with Meta…');
      try {
        const { body: answer } = await api(`${base}/settings`, { method: 'PUT', body });
        token.value = '';
        announce('Settings saved.', 'ok');
        await load();
        const again = document.getElementById('settings-result');
        if (again) clear(again, phoneSummary(answer.phone, 'Saved. Meta accepted the credentials.'));
      } catch (err) {
        clear(result, h('p', { class: 'error', role: 'alert' }, saveError(err)));
        save.disabled = false;
      }
    });
    return form;
  }

  function saveError(err) {
    if (err instanceof ApiError && err.code === 'graph_rejected_credentials') {
      const g = err.graph || {};
      return `Nothing was saved: Meta refused these credentials. ${[g.title, g.details].filter(Boolean).join(': ') || err.message} (code ${g.code ?? '?'}). Check the phone number id and that the token belongs to this business account.`;
    }
    if (err instanceof ApiError && err.code === 'unavailable') return `Nothing was saved: ${err.message}`;
    return `Nothing was saved: ${describeError(err)}`;
  }

  function graphLine(g) {
    return g ? h('span', {}, ` ${[g.title, g.details].filter(Boolean).join(': ')} (code ${g.code})`) : null;
  }

  function copyField(label, input) {
    const button = h('button', { type: 'button', class: 'small' }, 'Copy');
    button.addEventListener('click', async () => {
      input.select();
      try {
        await navigator.clipboard.writeText(input.value);
        announce(`${label} copied.`, 'ok');
      } catch {
        announce('Select the text and copy it with the keyboard.', 'info');
      }
    });
    const f = field(label, input);
    f.append(button);
    return f;
  }

  async function fillWelcomeOptions(select, saved) {
    try {
      const { body } = await api(`${base}/templates`);
      for (const t of body.templates.filter((t) => t.status === 'APPROVED')) {
        const v = `${t.name}@${t.language}`;
        if (v === saved || t.name === saved) continue;
        select.append(h('option', { value: v }, `${t.name} (${t.language})`));
      }
    } catch {
      // The list is a convenience here; the templates panel shows the error.
    }
  }

  function phoneSummary(p, lead) {
    if (!p) return h('p', {}, lead);
    return h('div', { class: 'phone-summary' }, h('p', { class: 'ok' }, lead),
      h('dl', {},
        h('dt', {}, 'Number'), h('dd', { id: 'phone-number' }, p.display_phone_number || '—'),
        h('dt', {}, 'Verified name'), h('dd', {}, p.verified_name || '—'),
        h('dt', {}, 'Quality'), h('dd', { id: 'phone-quality' }, qualityBadge(p.quality_rating))));
  }

  function connectedPanel(st) {
    const phone = h('div', { id: 'phone-details' }, 'Asking Meta for the number’s details…');
    api(`${base}/test`, { method: 'POST' }).then(({ body }) => {
      clear(phone, body.ok ? phoneSummary(body.phone, 'Meta answers for this number.')
        : h('p', { class: 'error' }, `Meta refused: ${body.error?.message || 'unknown error'}`));
    }).catch((err) => clear(phone, h('p', { class: 'error' }, describeError(err))));

    const disconnect = h('button', { type: 'button', class: 'danger' }, 'Disconnect WhatsApp');
    disconnect.addEventListener('click', () => confirmDisconnect());
    return h('section', { class: 'card', 'aria-labelledby': 'phone-title' },
      h('h2', { id: 'phone-title' }, 'Connected number'), phone,
      templatesPanel(), testMessageForm(),
      h('h3', {}, 'Disconnect'),
      h('p', {}, 'Erases the saved credentials and switches sending off. Stored conversations stay.'),
      disconnect);
  }

  function confirmDisconnect() {
    const dialog = h('dialog', { 'aria-labelledby': 'dc-title' },
      h('h2', { id: 'dc-title' }, 'Disconnect WhatsApp?'),
      h('p', {}, 'Agents will not be able to answer WhatsApp customers until the number is connected again.'));
    const yes = h('button', { type: 'button', class: 'danger' }, 'Disconnect');
    const no = h('button', { type: 'button' }, 'Cancel');
    dialog.append(h('div', { class: 'actions' }, yes, no));
    no.addEventListener('click', () => dialog.close());
    dialog.addEventListener('close', () => dialog.remove());
    yes.addEventListener('click', async () => {
      try {
        await api(base, { method: 'DELETE' });
        announce('WhatsApp disconnected.', 'ok');
        dialog.close();
        load();
      } catch (err) {
        announce(describeError(err), 'error');
        dialog.close();
      }
    });
    document.body.append(dialog);
    dialog.showModal();
    no.focus();
  }

  function templatesPanel() {
    const body = h('div', { id: 'templates' }, 'Loading templates…');
    const refresh = h('button', { type: 'button', class: 'small' }, 'Refresh from Meta');
    async function fill(force) {
      try {
        const { body: list } = await api(`${base}/templates${force ? '?refresh=true' : ''}`);
        const rows = list.templates.map((t) => h('tr', {},
          h('td', {}, t.name), h('td', {}, t.language), h('td', {}, t.category),
          h('td', {}, h('span', { class: `tag tag-${(t.status || '').toLowerCase()}` }, t.status)),
          h('td', {}, t.quality ? qualityBadge(t.quality) : '—')));
        clear(body,
          list.error ? h('p', { class: 'error' }, `Meta’s list could not be fetched: ${list.error.message || list.error}`) : null,
          rows.length ? h('div', { class: 'table-wrap' }, h('table', {},
            h('caption', { class: 'sr-only' }, 'Message templates'),
            h('thead', {}, h('tr', {}, ['Name', 'Language', 'Category', 'Status', 'Quality'].map((c) => h('th', { scope: 'col' }, c)))),
            h('tbody', {}, rows))) : h('p', {}, 'No templates yet: create them in WhatsApp Manager.'),
          h('p', { class: 'hint' }, `Fetched ${formatTime(list.fetched_at)}.`));
      } catch (err) {
        clear(body, h('p', { class: 'error' }, describeError(err)));
      }
    }
    refresh.addEventListener('click', () => fill(true));
    fill(false);
    return h('div', {}, h('h3', {}, 'Message templates ', refresh), body);
  }

  function testMessageForm() {
    const to = h('input', { type: 'tel', required: true, placeholder: '+260971234567', autocomplete: 'off' });
    const text = h('input', { type: 'text', required: true, value: 'Hello from wachat: this number is connected.', maxlength: 4096 });
    const result = h('div', { id: 'test-message-result', role: 'status', 'aria-live': 'polite' });
    const form = h('form', { class: 'inline-form', 'aria-labelledby': 'tm-title', novalidate: true },
      h('h3', { id: 'tm-title' }, 'Send a test message'),
      h('p', { class: 'hint' }, 'Meta delivers free-form text only to a number that wrote to this one in the last 24 hours; otherwise send a template from a conversation.'),
      field('To (international format)', to), field('Text', text),
      h('button', { type: 'submit' }, 'Send test message'), result);
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      if (!/^\+?[0-9][0-9 ()-]{5,}$/.test(to.value.trim())) {
        clear(result, h('p', { class: 'error', role: 'alert' }, 'Enter the number in international format, e.g. +260971234567.'));
        return;
      }
      clear(result, 'Sending…');
      try {
        const { body } = await api(`${base}/test-message`, { method: 'POST', body: { to: to.value.trim(), text: text.value } });
        clear(result, h('p', { class: 'ok' }, `Meta accepted the message (${body.whatsapp_message_id}).`));
      } catch (err) {
        clear(result, h('p', { class: 'error' }, describeError(err)));
      }
    });
    return form;
  }

  function windowAndPricing() {
    const usage = h('div', { id: 'usage' }, 'Loading usage…');
    api(`/api/sites/${enc(s.site)}/whatsapp/usage`).then(({ body }) => {
      const rows = body.by_category.map((u) => h('tr', {},
        h('td', {}, u.category), h('td', {}, u.pricing_type), h('td', {}, u.billable ? 'yes' : 'no'), h('td', { class: 'num' }, String(u.messages))));
      clear(usage, rows.length ? h('div', { class: 'table-wrap' }, h('table', {},
        h('caption', {}, `Messages Meta priced from ${formatTime(body.from)} to ${formatTime(body.to)}`),
        h('thead', {}, h('tr', {}, ['Category', 'Pricing', 'Billable', 'Messages'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, rows)))
        : h('p', {}, 'No priced messages in the last 30 days.'));
    }).catch((err) => clear(usage, h('p', { class: 'error' }, describeError(err))));
    return h('section', { class: 'card', 'aria-labelledby': 'pricing-title' },
      h('h2', { id: 'pricing-title' }, 'The 24-hour window and what messages cost'),
      h('p', {}, 'When a customer writes, a 24-hour customer service window opens (and reopens with each of their messages). Inside it agents may answer freely, and service replies are not charged. Outside it WhatsApp only accepts approved templates, and Meta charges each delivered template by its category (marketing, utility, authentication). ',
        external(META_DOCS.window, 'Customer service windows'), ' · ', external(META_DOCS.pricing, 'Pricing')),
      h('h3', {}, 'This site’s usage (last 30 days)'), usage);
  }

  load();
  return { kind: 'settings', stop() { stopped = true; } };
}

export function qualityBadge(q) {
  const v = (q || 'UNKNOWN').toUpperCase();
  return h('span', { class: `tag quality-${v.toLowerCase()}` }, v);
}
