// The template dialog: the site's approved templates, the chosen one's parameters as fields, a
// live preview, and the send. What would be refused (a marketing template to a customer who
// opted out, an empty parameter) is said before the send, not after.
import { api, describeError, enc } from './api.js';
import { announce, clear, field, h } from './dom.js';
import { clientMessageId, visitorLabel } from './conversations.js';

const PLACEHOLDER = /\{\{\s*([A-Za-z0-9_]+)\s*\}\}/g;

// The distinct placeholders of a text, in order of first use.
export function placeholders(text) {
  const seen = [];
  for (const m of (text || '').matchAll(PLACEHOLDER)) {
    if (!seen.includes(m[1])) seen.push(m[1]);
  }
  return seen;
}

export function fill(text, values) {
  return (text || '').replace(PLACEHOLDER, (all, key) => (values[key] ? values[key] : all));
}

function component(t, type) {
  return (t.components || []).find((c) => (c.type || '').toUpperCase() === type);
}

// The parameters a template takes: header (text or a media link), body, and URL buttons.
export function parameterSlots(t) {
  const slots = [];
  const header = component(t, 'HEADER');
  if (header) {
    const format = (header.format || 'TEXT').toUpperCase();
    if (format === 'TEXT') {
      for (const key of placeholders(header.text)) slots.push({ part: 'header', key, label: `Header {{${key}}}` });
    } else if (['IMAGE', 'VIDEO', 'DOCUMENT'].includes(format)) {
      slots.push({ part: 'header', key: 'media', media: format.toLowerCase(), label: `Header ${format.toLowerCase()} link (https://…)` });
    }
  }
  for (const key of placeholders(component(t, 'BODY')?.text)) slots.push({ part: 'body', key, label: `Body {{${key}}}` });
  (component(t, 'BUTTONS')?.buttons || []).forEach((b, index) => {
    if ((b.type || '').toUpperCase() === 'URL') {
      for (const key of placeholders(b.url)) slots.push({ part: 'button', index, key, label: `Button “${b.text}” link {{${key}}}` });
    }
  });
  return slots;
}

// Meta's `components` for a send: positional parameters for {{1}}, named ones otherwise.
export function sendComponents(slots, values) {
  const param = (s) => {
    const p = { type: 'text', text: values[s.key + s.part + (s.index ?? '')] };
    if (!/^\d+$/.test(s.key)) p.parameter_name = s.key;
    return p;
  };
  const out = [];
  const header = slots.filter((s) => s.part === 'header');
  if (header.length) {
    out.push({
      type: 'header',
      parameters: header.map((s) => (s.media ? { type: s.media, [s.media]: { link: values[s.key + s.part] } } : param(s))),
    });
  }
  const body = slots.filter((s) => s.part === 'body');
  if (body.length) out.push({ type: 'body', parameters: body.map(param) });
  const buttons = new Map();
  for (const s of slots.filter((x) => x.part === 'button')) {
    if (!buttons.has(s.index)) buttons.set(s.index, []);
    buttons.get(s.index).push(param(s));
  }
  for (const [index, parameters] of buttons) out.push({ type: 'button', sub_type: 'url', index: String(index), parameters });
  return out;
}

export async function openTemplateDialog({ s, conversation, onSent }) {
  if (!conversation) return;
  const dialog = h('dialog', { class: 'template-dialog', 'aria-labelledby': 'tpl-title' });
  const close = () => dialog.close();
  dialog.addEventListener('close', () => dialog.remove());
  const body = h('div', {}, 'Loading templates…');
  const cancel = h('button', { type: 'button' }, 'Cancel');
  cancel.addEventListener('click', close);
  dialog.append(h('h2', { id: 'tpl-title' }, `Send a template to ${visitorLabel(conversation.visitor)}`), body);
  document.body.append(dialog);
  dialog.showModal();

  let templates;
  try {
    // Asked each time: the server caches the list and refreshes it on Meta's template webhooks.
    const { body: list } = await api(`/api/sites/${enc(s.site)}/whatsapp/templates`);
    templates = list.templates.filter((t) => t.status === 'APPROVED');
  } catch (err) {
    clear(body, h('p', { class: 'error', role: 'alert' }, describeError(err)), h('div', { class: 'actions' }, cancel));
    return;
  }
  if (!templates.length) {
    clear(body, h('p', {}, 'This site has no approved templates. Create one in WhatsApp Manager and refresh the list in WhatsApp settings.'),
      h('div', { class: 'actions' }, cancel));
    return;
  }

  const select = h('select', { id: 'tpl-select' }, templates.map((t, i) =>
    h('option', { value: String(i) }, `${t.name} — ${t.language} (${t.category.toLowerCase()})`)));
  const params = h('div', { class: 'tpl-params' });
  const preview = h('div', { class: 'tpl-preview', id: 'tpl-preview', 'aria-live': 'polite', 'aria-label': 'Preview' });
  const warning = h('div', { class: 'warnings', role: 'alert', id: 'tpl-warnings' });
  const send = h('button', { type: 'submit', class: 'primary', id: 'tpl-send' }, 'Send template');
  const form = h('form', { novalidate: true }, field('Template', select), params,
    h('h3', {}, 'Preview'), preview, warning, h('div', { class: 'actions' }, send, cancel));
  clear(body, form);

  let slots = [];
  const values = {};
  const chosen = () => templates[Number(select.value)];

  function renderParams() {
    const t = chosen();
    slots = parameterSlots(t);
    for (const k of Object.keys(values)) delete values[k];
    clear(params, slots.length ? slots.map((slot) => {
      const input = h('input', { type: slot.media ? 'url' : 'text', required: true, maxlength: 1024, dataset: { slot: slot.key + slot.part + (slot.index ?? '') } });
      input.addEventListener('input', () => {
        values[input.dataset.slot] = input.value;
        renderPreview();
      });
      return field(slot.label, input);
    }) : h('p', { class: 'hint' }, 'This template takes no parameters.'));
    renderPreview();
  }

  function renderPreview() {
    const t = chosen();
    const byPart = (part) => Object.fromEntries(slots.filter((x) => x.part === part).map((x) => [x.key, values[x.key + part + (x.index ?? '')]]));
    const header = component(t, 'HEADER');
    const footer = component(t, 'FOOTER');
    const buttons = component(t, 'BUTTONS')?.buttons || [];
    clear(preview,
      header?.text ? h('p', { class: 'tpl-header' }, fill(header.text, byPart('header'))) : null,
      header && header.format && header.format !== 'TEXT' ? h('p', { class: 'hint' }, `[${header.format.toLowerCase()} header]`) : null,
      h('p', { class: 'tpl-body' }, fill(component(t, 'BODY')?.text, byPart('body'))),
      footer?.text ? h('p', { class: 'hint' }, footer.text) : null,
      buttons.length ? h('p', { class: 'tpl-buttons' }, buttons.map((b) => h('span', { class: 'tag' }, b.text))) : null);

    const notes = [];
    if (t.category === 'MARKETING' && conversation.visitor?.marketing_opt_out) {
      notes.push('This customer opted out of marketing messages: WhatsApp would refuse this template. Choose a utility template or wait for them to opt in.');
    }
    const missing = slots.filter((x) => !(values[x.key + x.part + (x.index ?? '')] || '').trim());
    if (missing.length) notes.push(`Fill in ${missing.map((x) => x.label).join(', ')}.`);
    clear(warning, notes.map((n) => h('p', { class: 'notice warn' }, n)));
    send.disabled = notes.length > 0;
  }

  select.addEventListener('change', renderParams);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (send.disabled) return;
    const t = chosen();
    const payload = {
      type: 'template',
      template: { name: t.name, language: t.language, components: sendComponents(slots, values) },
      sender_id: s.agentId,
      sender_name: s.agentName,
      client_message_id: clientMessageId(),
    };
    if (!payload.template.components.length) delete payload.template.components;
    send.disabled = true;
    try {
      const { body: answer } = await api(`/api/conversations/${enc(conversation.id)}/messages`, { method: 'POST', body: payload });
      if (answer?.message) onSent(answer.message);
      announce(`Template “${t.name}” sent.`, 'ok');
      close();
    } catch (err) {
      if (err.body?.message) onSent(err.body.message);
      clear(warning, h('p', { class: 'notice error' }, describeError(err)));
      send.disabled = false;
    }
  });
  renderParams();
  select.focus();
}
