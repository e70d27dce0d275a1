// The site's live events (API.md §3.5). A browser's EventSource cannot send the bearer token, so
// each connection first trades it for a single-use stream ticket (POST .../events/tickets) and
// opens the stream with ?ticket=. After a drop it asks for a new ticket and resumes after the
// last event it saw (?last_event_id=), so nothing in between is missed.
import { api, enc } from './api.js';

const TYPES = ['message.created', 'message.updated', 'conversation.created', 'conversation.updated', 'notification'];

export class LiveEvents {
  constructor(site, onEvent, onState) {
    this.site = site;
    this.onEvent = onEvent;
    this.onState = onState || (() => {});
    this.lastId = null;
    this.source = null;
    this.stopped = false;
    this.delay = 1000;
  }

  // Once stopped, a LiveEvents stays stopped (a screen left before its stream started must not
  // bring it back): make a new one instead.
  async start() {
    await this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.source?.close();
    this.source = null;
  }

  async connect() {
    if (this.stopped) return;
    let ticket;
    try {
      ({ body: { ticket } } = await api(`/api/sites/${enc(this.site)}/events/tickets`, { method: 'POST' }));
    } catch (err) {
      this.onState('offline', err);
      return this.retry();
    }
    if (this.stopped) return;
    const params = new URLSearchParams({ ticket });
    if (this.lastId) params.set('last_event_id', this.lastId);
    const source = new EventSource(`/api/sites/${enc(this.site)}/events?${params}`);
    this.source = source;
    source.onopen = () => {
      this.delay = 1000;
      this.onState('live');
    };
    for (const type of TYPES) {
      source.addEventListener(type, (e) => {
        if (e.lastEventId) this.lastId = e.lastEventId;
        let data;
        try {
          data = JSON.parse(e.data);
        } catch {
          return;
        }
        this.onEvent(type, data);
      });
    }
    // The ticket is spent: EventSource's own reconnect would be refused, so reconnect by hand.
    source.onerror = () => {
      source.close();
      if (this.source === source) this.source = null;
      this.onState('offline');
      this.retry();
    };
  }

  retry() {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), this.delay);
    this.delay = Math.min(this.delay * 2, 15000);
  }
}
