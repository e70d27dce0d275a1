// One message as a bubble: who wrote it, the message it replies to, its media (image, video and
// audio shown, documents as links, pending and failed downloads said in words, with a retry),
// its text, reactions, time and, for an agent's message, WhatsApp's ticks (a red cross carries
// Meta's error on hover and, when sending again can help, a Retry button).
import { api, describeError, enc } from './api.js';
import { announce, formatBytes, formatTime, h } from './dom.js';

// How a message's status is shown (WhatsApp's own ticks); the label is what a screen reader says.
const TICKS = {
  queued: { glyph: '◷', label: 'Waiting to be sent' },
  sent: { glyph: '✓', label: 'Sent' },
  delivered: { glyph: '✓✓', label: 'Delivered' },
  read: { glyph: '✓✓', label: 'Read' },
  played: { glyph: '✓✓', label: 'Played' },
  failed: { glyph: '✕', label: 'Failed' },
};

export function renderMessage(m, ctx) {
  const { id, messages } = ctx;
  const mine = m.sender_type === 'agent';
  const quoted = m.reply_to ? messages.get(m.reply_to) : null;
  const reactions = (m.reactions || []).map((r) =>
    h('span', { class: 'reaction', title: r.by === 'agent' ? 'Your reaction' : 'Customer’s reaction' }, r.emoji));
  const actions = h('div', { class: 'msg-actions' });
  if (m.status !== 'queued' && m.status !== 'failed' && m.sender_type !== 'system') {
    const replyButton = h('button', { type: 'button', class: 'link small', 'aria-label': `Reply to: ${(m.content || m.content_type).slice(0, 60)}` }, 'Reply');
    replyButton.addEventListener('click', () => ctx.onReply(m));
    actions.append(replyButton);
  }
  if (!mine && m.whatsapp_message_id) {
    const agentReaction = (m.reactions || []).find((r) => r.by === 'agent');
    const react = h('button', { type: 'button', class: 'link small', 'aria-pressed': agentReaction ? 'true' : 'false' },
      agentReaction ? 'Remove 👍' : 'React 👍');
    react.addEventListener('click', () => ctx.onReact(m, agentReaction ? '' : '👍'));
    actions.append(react);
  }
  return h('li', { class: `msg ${mine ? 'out' : m.sender_type === 'system' ? 'sys' : 'in'}`, dataset: { id: m.id, status: m.status } },
    h('div', { class: 'bubble' },
      h('p', { class: 'msg-sender' }, m.sender_name || (mine ? 'Agent' : m.sender_type === 'system' ? 'WhatsApp' : 'Customer')),
      quoted || m.reply_to ? h('blockquote', { class: 'quote' }, quoted ? (quoted.content || `[${quoted.content_type}]`) : 'An earlier message') : null,
      media(m, ctx),
      m.content && !(m.content_type === 'image' && !m.content) ? h('p', { class: 'msg-text' }, m.content) : null,
      reactions.length ? h('p', { class: 'reactions', 'aria-label': 'Reactions' }, reactions) : null,
      h('p', { class: 'msg-foot' },
        h('time', { datetime: m.created_at }, formatTime(m.created_at)),
        mine ? ticks(m, ctx) : null),
      actions));
}

function ticks(m, { id, onUpdate }) {
  const t = TICKS[m.status] || TICKS.queued;
  if (m.status !== 'failed') {
    return h('span', { class: `ticks ticks-${m.status}`, role: 'img', 'aria-label': t.label, title: t.label }, t.glyph);
  }
  const e = m.error || {};
  const why = [e.title, e.details].filter(Boolean).join(': ') || 'Meta did not accept the message';
  const text = `Failed: ${why}${e.code ? ` (code ${e.code})` : ''}`;
  const parts = [h('span', { class: 'ticks ticks-failed', role: 'img', 'aria-label': text, title: text, tabindex: '0' }, t.glyph),
    h('span', { class: 'fail-reason' }, why)];
  if (e.retryable) {
    const retry = h('button', { type: 'button', class: 'small retry' }, 'Retry');
    retry.addEventListener('click', async () => {
      retry.disabled = true;
      try {
        const { body } = await api(`/api/conversations/${enc(id)}/messages/${enc(m.id)}/retry`, { method: 'POST' });
        if (body?.message) onUpdate(body.message);
      } catch (err) {
        if (err.body?.message) onUpdate(err.body.message);
        announce(describeError(err), 'error');
        retry.disabled = false;
      }
    });
    parts.push(retry);
  }
  return h('span', { class: 'failed' }, parts);
}

function media(m, { id }) {
  if (!['image', 'video', 'audio', 'document', 'sticker'].includes(m.content_type)) return null;
  if (m.media_status === 'pending') return h('p', { class: 'media-pending' }, `Fetching the ${m.content_type} from WhatsApp…`);
  if (m.media_status === 'failed') {
    const retry = h('button', { type: 'button', class: 'small' }, 'Fetch again');
    retry.addEventListener('click', async () => {
      retry.disabled = true;
      try {
        await api(`/api/conversations/${enc(id)}/messages/${enc(m.id)}/media/retry`, { method: 'POST' });
      } catch (err) {
        announce(describeError(err), 'error');
        retry.disabled = false;
      }
    });
    return h('p', { class: 'media-failed' }, `The ${m.content_type} could not be fetched${m.error?.details ? `: ${m.error.details}` : ''}. `, retry);
  }
  if (!m.file_url) return null;
  if (m.media_status !== 'stored') {
    // Sent by a link elsewhere: not wachat's file, and the page's policy would not load it.
    return h('a', { href: m.file_url, target: '_blank', rel: 'noopener noreferrer', class: 'media-doc' },
      `${m.content_type === 'document' ? '📄 ' : ''}${m.file_name || `The ${m.content_type}`} (at its link)`);
  }
  const label = `${m.content_type} from ${m.sender_type === 'agent' ? 'the agent' : 'the customer'}${m.file_name ? `: ${m.file_name}` : ''}`;
  switch (m.content_type) {
    case 'image':
    case 'sticker':
      return h('a', { href: m.file_url, target: '_blank', rel: 'noopener noreferrer', class: 'media-link' },
        h('img', { src: m.file_url, alt: label, class: 'media-img', loading: 'lazy' }));
    case 'video':
      return h('video', { src: m.file_url, controls: true, preload: 'metadata', class: 'media-video', 'aria-label': label });
    case 'audio':
      return h('audio', { src: m.file_url, controls: true, preload: 'metadata', 'aria-label': label });
    default:
      return h('a', { href: m.file_url, class: 'media-doc', download: m.file_name || '' },
        `📄 ${m.file_name || 'Document'}`, m.file_size ? ` (${formatBytes(m.file_size)})` : '');
  }
}
