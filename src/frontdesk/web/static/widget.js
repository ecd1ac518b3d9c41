/*
 * Frontdesk chat widget — embeddable, dependency-free (plain ES2020).
 *
 *   <script src="https://frontdesk.example.com/widget.js" defer></script>
 *   optional: data-title="Support"  data-open="true"
 *
 * Renders into an open Shadow DOM so host-page CSS cannot interfere. Talks to the
 * Frontdesk API on the script's own origin: a WebSocket for live messages, with a
 * REST fallback for sending while the socket is down. Resumes the conversation
 * after a reload (localStorage) without losing or duplicating messages: every
 * message is keyed by its server `seq`, and every customer send by a
 * client_message_id generated once, so resends are idempotent.
 * The customer can end the chat (header button, with a confirm step). Once the conversation is
 * resolved (ended, a goodbye to the bot, resolved by an agent or left idle) the widget asks for
 * a 1-5 rating once, in the company's wording from /api/widget/config; a rating given or
 * skipped is remembered (server state + localStorage), so it is never asked twice.
 * While a model writes the bot's reply, the server may stream it as ephemeral "draft" frames
 * ({type: 'draft', reply_to, index, text}: never stored, never replayed); the widget shows them
 * in one busy bubble, which the stored reply (a message with the same reply_to) replaces.
 * Server text is only ever inserted with textContent (XSS-safe).
 */
(() => {
  'use strict';
  if (window.FrontdeskWidget) return; // loaded twice on the same page

  // document.currentScript is only set during synchronous execution: capture now.
  const script = document.currentScript;
  const ORIGIN = new URL(script && script.src ? script.src : location.href).origin;
  const WS_ORIGIN = ORIGIN.replace(/^http/, 'ws'); // http -> ws, https -> wss
  const TITLE = (script && script.dataset.title) || 'Chat with us';
  const START_OPEN = !!script && script.dataset.open === 'true';
  const STORAGE_KEY = 'frontdesk.conversation';
  const CSAT_KEY = 'frontdesk.csat';  // {conversation id: 'rated' | 'skipped'}, newest last
  const MAX_COMMENT = 1000;
  const CSAT_DEFAULTS = {
    question: 'How would you rate this conversation?',
    comment: "Anything you'd like to tell us? (optional)",
    thanks: 'Thank you for your feedback!',
  };
  const MAX_LEN = 4000;
  const DRAFT_STALE_MS = 60000;     // a draft with no new piece for this long is given up
  const ROLES = new Set(['customer', 'bot', 'agent', 'system']);

  const CSS = `
:host { all: initial; }
* { box-sizing: border-box; }
.fd { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  font-size: 15px; line-height: 1.45; color: #1f2937; }
button { font: inherit; cursor: pointer; }
.launcher { position: fixed; right: 20px; bottom: 20px; z-index: 2147483000; width: 56px; height: 56px;
  border: 0; border-radius: 50%; background: #0f766e; color: #fff; display: grid; place-items: center;
  box-shadow: 0 4px 14px rgba(0,0,0,.25); transition: transform .15s ease, background .15s ease; }
.launcher:hover { background: #115e59; transform: scale(1.05); }
.launcher svg { width: 26px; height: 26px; }
.panel { position: fixed; right: 20px; bottom: 88px; z-index: 2147483000; width: 360px; height: 520px;
  max-height: calc(100vh - 108px); display: flex; flex-direction: column; background: #fff;
  border-radius: 14px; box-shadow: 0 12px 40px rgba(0,0,0,.25); overflow: hidden; animation: fd-in .18s ease-out; }
.panel[hidden], [hidden] { display: none !important; }
@keyframes fd-in { from { opacity: 0; transform: translateY(8px); } }
header { display: flex; align-items: center; justify-content: space-between; gap: 8px;
  padding: 12px 10px 12px 16px; background: #0f766e; color: #fff; }
h2 { margin: 0; font-size: 16px; font-weight: 600; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.head-actions { display: flex; align-items: center; gap: 4px; flex: none; }
.end { height: 30px; padding: 0 10px; border: 1px solid rgba(255,255,255,.55); border-radius: 8px;
  background: transparent; color: #fff; font-size: 13px; font-weight: 500; }
.end:hover { background: rgba(255,255,255,.18); }
.confirm { display: flex; align-items: center; flex-wrap: wrap; gap: 8px; padding: 10px 14px;
  border-bottom: 1px solid #fde68a; background: #fffbeb; color: #78350f; font-size: 13.5px; }
.confirm p { flex: 1; min-width: 120px; margin: 0; }
.btn-s { height: 32px; padding: 0 12px; border: 1px solid #cbd5e1; border-radius: 8px; background: #fff;
  color: #1f2937; font-size: 13.5px; font-weight: 500; }
.btn-s:hover { background: #f1f5f9; }
.btn-s.primary { border-color: #0f766e; background: #0f766e; color: #fff; font-weight: 600; }
.btn-s.primary:hover:not(:disabled) { background: #115e59; }
.btn-s:disabled { opacity: .5; cursor: not-allowed; }
.csat { margin-top: 12px; padding: 14px; border: 1px solid #99f6e4; border-radius: 12px; background: #fff;
  box-shadow: 0 1px 3px rgba(15,23,42,.06); }
.csat-q { margin: 0 0 8px; font-weight: 600; }
.stars { display: flex; gap: 4px; margin: 0 0 10px; }
.star { width: 40px; height: 40px; padding: 0; border: 1px solid #e2e8f0; border-radius: 10px; background: #fff;
  color: #cbd5e1; font-size: 24px; line-height: 1; transition: color .1s ease, background .1s ease; }
.star.on { color: #f59e0b; border-color: #fcd34d; background: #fffbeb; }
.star:hover { border-color: #f59e0b; }
.csat label { display: block; margin: 0 0 4px; font-size: 13px; color: #475569; }
.csat textarea { display: block; width: 100%; min-height: 60px; max-height: 120px; resize: vertical; font-size: 14px; }
.csat-actions { display: flex; justify-content: flex-end; gap: 8px; margin-top: 10px; }
.csat-thanks { margin: 0; font-weight: 600; color: #115e59; text-align: center; }
.close { width: 34px; height: 34px; border: 0; border-radius: 8px; background: transparent; color: #fff;
  font-size: 24px; line-height: 1; }
.close:hover { background: rgba(255,255,255,.18); }
.scroll { flex: 1; overflow-y: auto; padding: 14px; background: #f8fafc; }
.list { display: flex; flex-direction: column; gap: 10px; }
.row { display: flex; flex-direction: column; align-items: flex-start; max-width: 85%; }
.row.customer { align-self: flex-end; align-items: flex-end; }
.row.system { align-self: center; align-items: center; max-width: 92%; }
.bubble { padding: 8px 12px; border: 1px solid #e2e8f0; border-radius: 14px 14px 14px 4px; background: #fff;
  white-space: pre-wrap; overflow-wrap: anywhere; }
.customer .bubble { background: #0f766e; border-color: #0f766e; color: #fff; border-radius: 14px 14px 4px 14px; }
.agent .bubble { background: #ecfeff; border-color: #a5f3fc; }
.system .bubble { background: transparent; border: 0; padding: 2px 8px; font-size: 12.5px; color: #475569; text-align: center; }
.pending .bubble { opacity: .7; }
.label, .meta { margin: 2px 6px; font-size: 12px; color: #475569; }
.cites { display: flex; flex-wrap: wrap; gap: 4px; margin-top: 4px; }
.cite { padding: 1px 8px; border: 1px solid #99f6e4; border-radius: 10px; background: #f0fdfa; color: #115e59; font-size: 12px; }
.draft .bubble { border-style: dashed; }
.draft .bubble::after { content: ""; display: inline-block; width: 7px; height: 1em; margin-left: 2px;
  vertical-align: text-bottom; border-radius: 1px; background: #64748b; animation: fd-blink 1.2s infinite ease-in-out; }
.typing { margin-top: 10px; }
.typing .bubble { display: inline-flex; gap: 4px; padding: 12px; }
.dot { width: 7px; height: 7px; border-radius: 50%; background: #64748b; animation: fd-blink 1.2s infinite ease-in-out; }
.dot:nth-child(2) { animation-delay: .2s; } .dot:nth-child(3) { animation-delay: .4s; }
@keyframes fd-blink { 0%, 80%, 100% { opacity: .25; } 40% { opacity: 1; } }
.error { margin: 0; padding: 8px 14px; border-top: 1px solid #fecaca; background: #fef2f2; color: #991b1b; font-size: 13px; }
form { display: flex; align-items: flex-end; gap: 8px; padding: 10px; border-top: 1px solid #e2e8f0; background: #fff; }
textarea { flex: 1; min-height: 40px; max-height: 120px; padding: 8px 10px; resize: none; font: inherit;
  color: #1f2937; background: #fff; border: 1px solid #94a3b8; border-radius: 10px; }
.send { height: 40px; padding: 0 16px; border: 0; border-radius: 10px; background: #0f766e; color: #fff; font-weight: 600; }
.send:hover { background: #115e59; }
button:focus-visible, textarea:focus-visible, .scroll:focus-visible { outline: 3px solid #f59e0b; outline-offset: 2px; }
.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
@media (max-width: 480px) { .panel { inset: 0; width: 100%; height: 100%; max-height: none; border-radius: 0; } }
@media (prefers-reduced-motion: reduce) { *, *::before, *::after { animation: none !important; transition: none !important; } }
`;

  const ICON = '<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" ' +
    'stroke-linejoin="round" aria-hidden="true"><path d="M21 15a2 2 0 0 1-2 2H7l-4 4V5a2 2 0 0 1 2-2h14a2 2 0 0 1 2 2z"/></svg>';

  // ---- DOM (static template only; no server data goes through innerHTML) ----
  const host = document.createElement('div');
  host.id = 'frontdesk-widget';
  // Guard the host element itself (outside the shadow root) against page CSS; a transform or
  // filter on it would also break position: fixed for everything inside.
  host.style.cssText = 'display:block!important;position:static!important;visibility:visible!important;' +
    'opacity:1!important;transform:none!important;filter:none!important;contain:none!important';
  const root = host.attachShadow({ mode: 'open' });
  root.innerHTML = `<style>${CSS}</style>
<div class="fd">
  <button class="launcher" type="button" data-testid="fd-launcher" aria-label="Open chat"
    aria-expanded="false" aria-controls="fd-panel">${ICON}</button>
  <section class="panel" id="fd-panel" data-testid="fd-panel" role="dialog" aria-labelledby="fd-title" hidden>
    <header><h2 id="fd-title"></h2>
      <div class="head-actions">
        <button class="end" type="button" data-testid="fd-end" aria-controls="fd-confirm" aria-expanded="false" hidden>End chat</button>
        <button class="close" type="button" aria-label="Close chat">×</button>
      </div>
    </header>
    <div class="confirm" id="fd-confirm" data-testid="fd-end-prompt" role="alertdialog" aria-labelledby="fd-confirm-text" hidden>
      <p id="fd-confirm-text">End this chat?</p>
      <button class="btn-s primary" type="button" data-testid="fd-end-confirm">End chat</button>
      <button class="btn-s" type="button" data-testid="fd-end-cancel">Cancel</button>
    </div>
    <div class="scroll" tabindex="0">
      <div class="list" role="log" aria-live="polite"></div>
      <div class="row typing" data-testid="fd-typing" hidden>
        <div class="bubble" role="status" aria-label="Typing"><span class="dot"></span><span class="dot"></span><span class="dot"></span></div>
      </div>
      <section class="csat" data-testid="fd-csat" aria-labelledby="fd-csat-q" hidden>
        <div class="csat-form">
          <p class="csat-q" id="fd-csat-q"></p>
          <div class="stars" role="group" aria-labelledby="fd-csat-q"></div>
          <label for="fd-csat-comment" id="fd-csat-comment-label"></label>
          <textarea id="fd-csat-comment" data-testid="fd-csat-comment" rows="2" maxlength="${MAX_COMMENT}"></textarea>
          <div class="csat-actions">
            <button class="btn-s" type="button" data-testid="fd-csat-skip">Skip</button>
            <button class="btn-s primary" type="button" data-testid="fd-csat-send" disabled>Send</button>
          </div>
        </div>
        <p class="csat-thanks" data-testid="fd-csat-thanks" role="status" hidden></p>
      </section>
    </div>
    <p class="error" role="alert" data-testid="fd-error" hidden></p>
    <form class="composer" novalidate>
      <label class="sr" for="fd-input">Message</label>
      <textarea id="fd-input" data-testid="fd-input" rows="1" maxlength="${MAX_LEN}" placeholder="Type your message…"></textarea>
      <button class="send" type="submit" data-testid="fd-send">Send</button>
    </form>
  </section>
</div>`;
  const $ = (sel) => root.querySelector(sel);
  const launcher = $('.launcher'), panel = $('.panel'), scroller = $('.scroll'), list = $('.list');
  const typing = $('.typing'), errorLine = $('.error'), form = $('form.composer'), input = $('#fd-input');
  $('#fd-title').textContent = TITLE;
  const endBtn = $('[data-testid="fd-end"]'), confirmBar = $('.confirm');
  const confirmBtn = $('[data-testid="fd-end-confirm"]'), cancelBtn = $('[data-testid="fd-end-cancel"]');
  const csatCard = $('.csat'), csatForm = $('.csat-form'), csatThanks = $('.csat-thanks');
  const csatComment = $('#fd-csat-comment'), csatSend = $('[data-testid="fd-csat-send"]');
  const csatSkip = $('[data-testid="fd-csat-skip"]'), starBox = $('.stars');
  const stars = [1, 2, 3, 4, 5].map((n) => {
    const b = el('button', 'star', '★');
    b.type = 'button';
    b.dataset.testid = 'fd-csat-score-' + n;
    b.dataset.score = String(n);
    b.setAttribute('aria-label', n === 1 ? '1 star' : n + ' stars');
    b.setAttribute('aria-pressed', 'false');
    starBox.append(b);
    return b;
  });

  // ---- State ----
  let convId = null;
  let mode = null, status = null;   // last known conversation mode/status
  let lastSeq = 0;                  // highest seq rendered with no gap below it (resume point)
  const rendered = new Set();       // every seq already on screen
  const pending = new Map();        // client_message_id -> {cmid, text, row, sentOn, inflight}
  let ws = null, retries = 0, retryTimer = null, starting = null, typingTimer = null;
  let errorKind = null;             // 'network' errors clear themselves on reconnect
  let csatServer = null;            // the server's rating of this conversation, once known
  let csatScore = 0, csatBusy = false, ending = false;
  let config = null;                // GET /api/widget/config (wording), fetched once
  // Replies being written: String(reply_to) -> {row, bubble, text, next, early, timer}.
  const drafts = new Map();
  const settled = new Set();        // reply_to ids whose draft must not open (again)

  const store = {
    get() { try { return localStorage.getItem(STORAGE_KEY); } catch { return null; } },
    set(v) { try { localStorage.setItem(STORAGE_KEY, v); } catch { /* storage unavailable */ } },
    clear() { try { localStorage.removeItem(STORAGE_KEY); } catch { /* storage unavailable */ } },
  };
  const api = (path) => ORIGIN + '/api/conversations' + path;
  const convPath = () => '/' + encodeURIComponent(convId);

  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID(); // secure contexts only
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;     // RFC 4122 v4 bits
    const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  function el(tag, cls, text) {
    const n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text != null) n.textContent = text;
    return n;
  }

  // ---- Rendering ----
  const scrollDown = () => { scroller.scrollTop = scroller.scrollHeight; };

  function makeRow(role, text) {
    const row = el('div', 'row ' + role);
    if (role === 'agent') row.append(el('div', 'label', 'Agent'));
    const bubble = el('div', 'bubble', text);
    bubble.dataset.testid = 'fd-message';
    bubble.dataset.role = role;
    row.append(bubble);
    return { row, bubble };
  }

  /**
   * Render a server Message once (keyed by seq), replacing its pending bubble if any.
   * `complete` is true for socket frames and full history, which arrive with no gaps,
   * so everything up to this seq is known; REST send responses may skip seqs (e.g. an
   * agent message sent while the socket was down), so they only advance lastSeq over a gap-free run.
   */
  function handleMessage(m, complete = false) {
    if (!m || typeof m.seq !== 'number') return;
    if (complete) lastSeq = Math.max(lastSeq, m.seq);
    if (m.client_message_id && pending.has(m.client_message_id)) {
      pending.get(m.client_message_id).row.remove();
      pending.delete(m.client_message_id);
      if (errorKind === 'network' && !pending.size) clearError();
    }
    const draft = settleDraft(m);
    if (rendered.has(m.seq)) { if (draft) draft.row.remove(); return; }
    rendered.add(m.seq);
    while (rendered.has(lastSeq + 1)) lastSeq++;

    const role = ROLES.has(m.role) ? m.role : 'system';
    const { row, bubble } = makeRow(role, m.text || '');
    row.dataset.seq = bubble.dataset.seq = String(m.seq);
    const cites = role === 'customer' || !Array.isArray(m.citations) ? [] : m.citations;
    if (cites.length) {
      const box = el('div', 'cites'), seen = new Set();
      for (const c of cites) {
        const title = c && (c.title || c.id);
        const key = c && (c.id || c.title);
        if (!title || seen.has(key)) continue;
        seen.add(key);
        const tag = el('span', 'cite', 'Source: ' + title);
        tag.dataset.testid = 'fd-citation';
        if (c.id) tag.dataset.citationId = String(c.id);
        box.append(tag);
      }
      row.append(box);
    }
    if (draft && fitsAt(draft.row, m.seq)) {
      draft.row.replaceWith(row); // the reply takes its draft's place
    } else {
      if (draft) draft.row.remove();
      // Keep seq order: insert before the first later message or still-pending bubble.
      const next = Array.from(list.children).find((r) => r.classList.contains('pending') || Number(r.dataset.seq) > m.seq);
      list.insertBefore(row, next || null);
    }
    if (role === 'bot' || role === 'agent') hideTyping();
    updateEnd();
    scrollDown();
  }

  // ---- Drafts: the bot's reply while a model writes it ----
  /** A draft frame: open the reply's bubble on the first piece, append pieces in index order
   *  (a repeated index is ignored, an early one waits for the ones before it). */
  function onDraft(f) {
    const index = f.index, piece = f.text;
    if (f.reply_to == null || f.reply_to === '' || typeof piece !== 'string') return;
    if (!Number.isInteger(index) || index < 0) return;
    const key = String(f.reply_to);
    if (settled.has(key)) return; // already answered, or cut off by a reconnect
    const d = drafts.get(key) || openDraft(key);
    if (index < d.next || d.early.has(index)) return;
    d.early.set(index, piece);
    while (d.early.has(d.next)) {
      d.text.appendData(d.early.get(d.next));
      d.early.delete(d.next);
      d.next++;
    }
    clearTimeout(d.timer);
    // Never busy forever: a stream that stops is given up, and the stored reply fetched.
    d.timer = setTimeout(() => { dropDraft(key); syncHistory(); }, DRAFT_STALE_MS);
    scrollDown();
  }

  function openDraft(key) {
    const row = el('div', 'row bot draft');
    row.dataset.replyTo = key;
    const bubble = el('div', 'bubble');
    bubble.dataset.testid = 'fd-draft';
    bubble.dataset.role = 'bot';
    bubble.setAttribute('aria-busy', 'true'); // screen readers wait for the finished reply
    const text = document.createTextNode('');
    bubble.append(text);
    row.append(bubble);
    const next = Array.from(list.children).find((r) => r.classList.contains('pending'));
    list.insertBefore(row, next || null);
    hideTyping(); // the draft stands in for the typing dots
    const d = { row, bubble, text, next: 0, early: new Map(), timer: null };
    drafts.set(key, d);
    return d;
  }

  /** A stored message that answers a customer message (bot or system) ends that message's
   *  draft: returns the draft, out of the map, for the message to take its place. */
  function settleDraft(m) {
    if ((m.role !== 'bot' && m.role !== 'system') || m.reply_to == null || m.reply_to === '') return null;
    const key = String(m.reply_to);
    settled.add(key);
    const d = drafts.get(key);
    if (!d) return null;
    drafts.delete(key);
    clearTimeout(d.timer);
    return d;
  }

  /** Whether a message with this seq keeps seq order in the place of `row`. */
  function fitsAt(row, seq) {
    if (row.parentNode !== list) return false;
    let after = false;
    for (const r of list.children) {
      if (r === row) { after = true; continue; }
      if (r.classList.contains('pending')) { if (!after) return false; continue; }
      if (!r.dataset.seq) continue; // notices
      if (after ? Number(r.dataset.seq) < seq : Number(r.dataset.seq) > seq) return false;
    }
    return true;
  }

  /** Remove a draft whose stream broke off; later pieces of it (after a gap) are ignored. */
  function dropDraft(key) {
    const d = drafts.get(key);
    if (!d) return;
    drafts.delete(key);
    clearTimeout(d.timer);
    d.row.remove();
    settled.add(key);
  }

  /** Remove every open draft; true if there was one. */
  function dropDrafts() {
    const had = drafts.size > 0;
    for (const key of Array.from(drafts.keys())) dropDraft(key);
    return had;
  }

  /** A local, unsequenced status line (e.g. handoff); not a server message. */
  function notice(text) {
    const row = el('div', 'row system');
    const b = el('div', 'bubble', text);
    b.dataset.testid = 'fd-notice';
    row.append(b);
    list.append(row);
    scrollDown();
  }

  function setMode(newMode, newStatus) {
    if (newMode && newMode !== mode) {
      if (mode && newMode === 'human') notice('A person from our team will take over this chat.');
      if (mode === 'human' && newMode === 'bot') notice('You are chatting with our assistant again.');
      mode = newMode;
    }
    if (newStatus && newStatus !== status) {
      if (status && newStatus === 'resolved') notice('This conversation has been marked as resolved.');
      status = newStatus;
    }
    if (mode === 'human') hideTyping(); // a person's reply time is unknown
    if (status === 'resolved') { hideTyping(); maybeAskCsat(); }
    else if (csatThanks.hidden) hideCsat(); // reopened before rating: the card goes (it comes back on the next resolution)
    updateEnd();
  }

  function showTyping() {
    if (mode === 'human') return;
    typing.hidden = false;
    clearTimeout(typingTimer);
    typingTimer = setTimeout(hideTyping, 60000); // never spin forever
    scrollDown();
  }
  function hideTyping() { typing.hidden = true; clearTimeout(typingTimer); }

  function showError(text, kind = 'send') {
    errorLine.textContent = text;
    errorLine.hidden = false;
    errorKind = kind;
  }
  function clearError() { errorLine.hidden = true; errorLine.textContent = ''; errorKind = null; }

  /** Human-readable text for a failed send (HTTP status and/or error body / frame). */
  function errorText(httpStatus, body) {
    const err = (body && body.error) || {};
    const code = String(err.code || '');
    if (httpStatus === 413 || /too_long|too_large|length/i.test(code)) {
      return `That message is too long (max ${MAX_LEN} characters). Please shorten it and try again.`;
    }
    if (httpStatus === 429 || /rate|too_many/i.test(code)) {
      return "You're sending messages too quickly. Please wait a moment and try again.";
    }
    const detail = body && typeof body.detail === 'string' ? body.detail : '';
    return err.message || detail || 'Sorry, your message could not be sent. Please try again.';
  }

  const NETWORK_ERROR = "Can't reach the chat server. Your message will be sent when the connection is back.";

  // ---- Ending the chat ----
  /** "End chat" shows while a conversation with messages in it is not resolved. */
  function updateEnd() {
    const show = !!convId && status !== 'resolved' && (rendered.size > 0 || pending.size > 0);
    endBtn.hidden = !show;
    if (!show) hideConfirm(false);
  }

  function showConfirm() {
    confirmBar.hidden = false;
    endBtn.setAttribute('aria-expanded', 'true');
    confirmBtn.focus();
  }
  function hideConfirm(focusBack) {
    if (confirmBar.hidden) return;
    confirmBar.hidden = true;
    endBtn.setAttribute('aria-expanded', 'false');
    if (focusBack && !endBtn.hidden) endBtn.focus();
  }

  async function endChat() {
    if (!convId || ending) return;
    const id = convId;
    ending = true;
    confirmBtn.disabled = true;
    let res, body;
    try {
      res = await fetch(api('/' + encodeURIComponent(id) + '/end'), { method: 'POST' });
      body = await res.json().catch(() => ({}));
    } catch {
      showError("Can't reach the chat server. Please try again.");
      return;
    } finally {
      ending = false;
      confirmBtn.disabled = false;
    }
    if (id !== convId) return;
    if (res.ok) {
      hideConfirm(false);
      if (errorKind !== 'network') clearError();
      setMode(body.mode, body.status || 'resolved');
      const first = stars[0];
      if (!csatCard.hidden && first) first.focus({ preventScroll: true });
    } else if (res.status === 404) {
      hideConfirm(false);
      resetConversation();
    } else {
      showError(errorText(res.status, body) || 'Sorry, the chat could not be ended. Please try again.');
    }
  }

  // ---- Satisfaction survey (CSAT) ----
  const csatLocal = {
    all() {
      try { const v = JSON.parse(localStorage.getItem(CSAT_KEY) || '{}'); return v && typeof v === 'object' ? v : {}; } catch { return {}; }
    },
    get(id) { return id ? this.all()[id] || null : null; },
    set(id, value) {
      const all = this.all();
      delete all[id];
      all[id] = value;
      const keys = Object.keys(all);
      for (const k of keys.slice(0, Math.max(0, keys.length - 50))) delete all[k]; // keep the newest 50
      try { localStorage.setItem(CSAT_KEY, JSON.stringify(all)); } catch { /* storage unavailable */ }
    },
  };

  const wording = (key) => {
    const c = config && config.csat;
    return (c && typeof c[key] === 'string' && c[key].trim()) ? c[key] : CSAT_DEFAULTS[key];
  };

  /** Fetch the company's wording once; the defaults stand in until (or if never) it arrives. */
  let configLoading = null;
  function loadConfig() {
    if (!configLoading) {
      configLoading = fetch(ORIGIN + '/api/widget/config')
        .then((r) => (r.ok ? r.json() : null))
        .then((c) => { if (c && typeof c === 'object') { config = c; applyWording(); } })
        .catch(() => { configLoading = null; });
    }
    return configLoading;
  }

  function applyWording() {
    $('#fd-csat-q').textContent = wording('question');
    $('#fd-csat-comment-label').textContent = wording('comment');
    csatThanks.textContent = wording('thanks');
  }
  applyWording();

  /** Ask for a rating when the conversation is resolved, unless it was rated or skipped. */
  function maybeAskCsat() {
    if (!convId || status !== 'resolved' || !csatCard.hidden) return;
    if (csatServer || csatLocal.get(convId)) return;
    loadConfig();
    csatScore = 0;
    csatComment.value = '';
    pickScore(0);
    csatForm.hidden = false;
    csatThanks.hidden = true;
    csatCard.hidden = false;
    scrollDown();
  }

  function hideCsat() {
    csatCard.hidden = true;
    csatThanks.hidden = true;
    csatForm.hidden = false;
  }

  function pickScore(n) {
    csatScore = n;
    stars.forEach((b, i) => {
      b.classList.toggle('on', i < n);
      b.setAttribute('aria-pressed', String(i + 1 === n));
    });
    csatSend.disabled = !n || csatBusy;
  }

  function csatDone(id, how) {
    csatLocal.set(id, how);
    if (how === 'rated') {
      csatForm.hidden = true;
      csatThanks.hidden = false;
      scrollDown();
    } else {
      hideCsat();
    }
  }

  async function sendCsat() {
    if (!convId || !csatScore || csatBusy) return;
    const id = convId;
    const comment = csatComment.value.trim();
    if (comment.length > MAX_COMMENT) {
      showError(`Your comment is too long (max ${MAX_COMMENT} characters).`);
      return;
    }
    const payload = { score: csatScore };
    if (comment) payload.comment = comment;
    csatBusy = true;
    csatSend.disabled = csatSkip.disabled = true;
    let res, body;
    try {
      res = await fetch(api('/' + encodeURIComponent(id) + '/csat'), {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(payload),
      });
      body = await res.json().catch(() => ({}));
    } catch {
      showError("Can't reach the chat server. Your rating was not sent; please try again.");
      return;
    } finally {
      csatBusy = false;
      csatSkip.disabled = false;
      csatSend.disabled = !csatScore;
    }
    if (id !== convId) return;
    const code = String((body && body.error && body.error.code) || '');
    if (res.ok) {
      if (errorKind !== 'network') clearError();
      csatServer = body;
      csatDone(id, 'rated');
    } else if (res.status === 409 && code === 'csat_already_given') {
      csatDone(id, 'skipped'); // rated elsewhere (another tab): just stop asking
      showError('This conversation has already been rated. Thank you!');
    } else if (res.status === 409 && code === 'not_resolved') {
      hideCsat(); // it was reopened meanwhile; asked again when it is resolved
      showError('This conversation is open again, so it cannot be rated yet.');
    } else if (res.status === 413) {
      showError(`Your comment is too long (max ${MAX_COMMENT} characters).`);
    } else if (res.status === 404) {
      hideCsat();
      resetConversation();
    } else {
      const err = (body && body.error) || {};
      showError(err.message || 'Sorry, your rating could not be sent. Please try again.');
    }
  }

  // ---- Sending ----
  /** Validate, show a pending bubble, queue with a fresh client_message_id, flush. */
  function submitText(raw) {
    const text = String(raw == null ? '' : raw).trim();
    if (!text) return false;
    if (text.length > MAX_LEN) { showError(errorText(413)); return false; }
    if (errorKind !== 'network') clearError();
    const cmid = uuid();
    const { row, bubble } = makeRow('customer', text);
    row.classList.add('pending');
    row.dataset.cmid = cmid;
    bubble.dataset.pending = 'true';
    row.append(el('div', 'meta', 'sending…'));
    list.append(row);
    pending.set(cmid, { cmid, text, row, sentOn: null, inflight: false });
    updateEnd();
    scrollDown();
    start().then(flush);
    return true;
  }

  /** A send was rejected: drop its bubble and put the text back so nothing is lost. */
  function failPending(cmid, message) {
    const p = pending.get(cmid);
    if (!p) return;
    p.row.remove();
    pending.delete(cmid);
    input.value = input.value ? p.text + '\n' + input.value : p.text;
    autosize();
    hideTyping();
    showError(message);
  }

  /**
   * Send queued messages: over the socket when open; via REST while it is down
   * (while it is still connecting, its onopen will flush).
   */
  function flush() {
    if (!convId || !pending.size) return;
    if (ws && ws.readyState === WebSocket.OPEN) {
      for (const p of pending.values()) {
        if (p.sentOn === ws || p.inflight) continue; // resent on every new socket: idempotent
        ws.send(JSON.stringify({ type: 'message', text: p.text, client_message_id: p.cmid }));
        p.sentOn = ws;
        showTyping();
      }
    } else if (!ws) {
      restFlush();
    }
  }

  let restBusy = false;
  /** REST fallback: one message at a time, in order; stops at the first transient failure. */
  async function restFlush() {
    if (restBusy) return;
    restBusy = true;
    try {
      for (const p of Array.from(pending.values())) {
        if (!convId || (ws && ws.readyState === WebSocket.OPEN)) break; // socket took over
        if (!pending.has(p.cmid)) continue;
        p.inflight = true;
        showTyping();
        let done;
        try { done = await restSend(p); } finally { p.inflight = false; }
        if (!done) break;
      }
    } finally {
      restBusy = false;
    }
    if (ws && ws.readyState === WebSocket.OPEN) flush();
  }

  /** Returns true when the message is settled (sent or rejected), false to retry later. */
  async function restSend(p) {
    const id = convId;
    let res, body;
    try {
      res = await fetch(api('/' + encodeURIComponent(id) + '/messages'), {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ text: p.text, client_message_id: p.cmid }),
      });
      body = await res.json().catch(() => ({}));
    } catch {
      hideTyping();
      showError(NETWORK_ERROR, 'network');
      return false;
    }
    if (id !== convId) return false;
    if (res.ok) {
      handleMessage(body.message);
      if (pending.has(p.cmid)) { p.row.remove(); pending.delete(p.cmid); }
      const replies = Array.isArray(body.replies) ? body.replies : [];
      // Replies need their seq for dedupe against the socket; fetch history if absent.
      if (replies.every((r) => r && typeof r.seq === 'number')) replies.forEach((r) => handleMessage(r));
      else syncHistory();
      if (replies.length) hideTyping();
      if (body.handoff) setMode('human');
      else if (status === 'resolved' || replies.length) syncHistory(); // no socket: learn a reopen or a goodbye
      if (errorKind === 'network' && !pending.size) clearError();
      return true;
    }
    if (res.status === 404) { resetConversation(); start().then(flush); return false; }
    if (res.status >= 500) { hideTyping(); showError(NETWORK_ERROR, 'network'); return false; }
    failPending(p.cmid, errorText(res.status, body)); // 413 / 422 / 429 ...
    return true;
  }

  // ---- Conversation lifecycle ----
  function renderConversation(c) {
    if (c.csat) { csatServer = c.csat; if (convId) csatLocal.set(convId, 'rated'); }
    setMode(c.mode, c.status);
    const msgs = Array.isArray(c.messages) ? c.messages.slice() : [];
    msgs.sort((a, b) => a.seq - b.seq).forEach((m) => handleMessage(m, true));
  }

  /** Create or resume the conversation (memoized; retried with backoff on failure). */
  function start() {
    loadConfig(); // the survey's wording, ready before it is needed
    if (!starting) {
      starting = init().catch(() => {
        starting = null;
        showError("We couldn't connect to the chat. Retrying…", 'network');
        clearTimeout(retryTimer);
        retryTimer = setTimeout(start, Math.min(500 * 2 ** retries++, 10000));
      });
    }
    return starting;
  }

  async function init() {
    const saved = store.get();
    if (saved) {
      const res = await fetch(api('/' + encodeURIComponent(saved)));
      if (res.ok) {
        convId = saved;
        renderConversation(await res.json());
      } else if (res.status === 404) {
        store.clear(); // unknown on the server: start a new one
      } else {
        throw new Error('HTTP ' + res.status);
      }
    }
    if (!convId) {
      const res = await fetch(api(''), {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ channel: 'web' }),
      });
      if (!res.ok) throw new Error('HTTP ' + res.status);
      const c = await res.json();
      convId = String(c.id);
      csatServer = null;
      store.set(convId);
      setMode(c.mode || 'bot', c.status || 'open');
    }
    retries = 0;
    if (errorKind === 'network') clearError();
    connect();
  }

  /** Catch up through REST (used while the socket keeps failing); detects deleted conversations. */
  async function syncHistory() {
    const id = convId;
    if (!id) return;
    try {
      const res = await fetch(api('/' + encodeURIComponent(id)));
      if (id !== convId) return;
      if (res.status === 404) { resetConversation(); start().then(flush); return; }
      if (res.ok) renderConversation(await res.json());
    } catch { /* offline: the reconnect loop keeps trying */ }
  }

  /** Forget a conversation the server no longer knows; pending messages stay queued. */
  function resetConversation() {
    store.clear();
    convId = null; starting = null; mode = null; status = null; csatServer = null;
    hideCsat(); hideConfirm(false); endBtn.hidden = true;
    if (ws) { const old = ws; ws = null; old.close(); }
    clearTimeout(retryTimer);
    retries = 0; lastSeq = 0; rendered.clear();
    dropDrafts(); settled.clear();
    list.querySelectorAll('.row:not(.pending)').forEach((r) => r.remove());
    for (const p of pending.values()) p.sentOn = null;
  }

  // ---- WebSocket with exponential-backoff reconnect ----
  function connect() {
    if (!convId || ws) return;
    const sock = new WebSocket(`${WS_ORIGIN}/api/conversations${convPath()}/ws?after=${lastSeq}`);
    ws = sock;
    sock.onopen = () => {
      retries = 0;
      if (errorKind === 'network') clearError();
      flush(); // (re)send everything not yet echoed back
    };
    sock.onmessage = (event) => {
      let frame;
      try { frame = JSON.parse(event.data); } catch { return; }
      if (ws === sock) onFrame(frame);
    };
    sock.onclose = () => {
      if (ws !== sock) return; // replaced or reset on purpose
      ws = null;
      // Drafts are not replayed: the reply being written comes from the backlog on resume.
      if (dropDrafts()) showTyping();
      const delay = Math.min(500 * 2 ** retries, 10000); // 0.5s, 1s, 2s … 10s
      retries++;
      clearTimeout(retryTimer);
      retryTimer = setTimeout(() => {
        if (retries > 1) syncHistory(); // socket keeps failing: catch up over REST
        flush();                        // socket down -> REST fallback for queued sends
        connect();                      // resumes with ?after=lastSeq
      }, delay);
    };
  }

  function onFrame(f) {
    if (!f || typeof f !== 'object') return;
    if (f.type === 'message') {
      handleMessage(f.message, true);
    } else if (f.type === 'draft') {
      onDraft(f);
    } else if (f.type === 'conversation') {
      setMode(f.mode, f.status);
    } else if (f.type === 'error') {
      const message = errorText(0, f);
      if (f.client_message_id && pending.has(f.client_message_id)) failPending(f.client_message_id, message);
      else { hideTyping(); showError(message); }
    }
  }

  // ---- UI wiring ----
  function autosize() {
    input.style.height = 'auto';
    input.style.height = Math.min(input.scrollHeight + 2, 120) + 'px';
  }

  function open(focus = true) {
    panel.hidden = false;
    launcher.setAttribute('aria-expanded', 'true');
    start();
    scrollDown();
    if (focus) input.focus({ preventScroll: true });
  }

  function close() {
    const hadFocus = !!root.activeElement;
    panel.hidden = true;
    launcher.setAttribute('aria-expanded', 'false');
    if (hadFocus) launcher.focus();
  }

  launcher.addEventListener('click', () => (panel.hidden ? open() : close()));
  $('.close').addEventListener('click', close);
  panel.addEventListener('keydown', (e) => {
    if (e.key !== 'Escape') return;
    if (!confirmBar.hidden) { e.stopPropagation(); hideConfirm(true); return; }
    close();
  });
  endBtn.addEventListener('click', () => (confirmBar.hidden ? showConfirm() : hideConfirm(true)));
  cancelBtn.addEventListener('click', () => hideConfirm(true));
  confirmBtn.addEventListener('click', endChat);
  stars.forEach((b, i) => b.addEventListener('click', () => pickScore(i + 1)));
  csatSend.addEventListener('click', sendCsat);
  csatSkip.addEventListener('click', () => { if (convId) csatDone(convId, 'skipped'); input.focus(); });
  input.addEventListener('input', autosize);
  input.addEventListener('keydown', (e) => {
    // Enter sends; Shift+Enter inserts a newline; ignore Enter while composing (IME).
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      form.requestSubmit();
    }
  });
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    if (submitText(input.value)) { input.value = ''; autosize(); }
    input.focus();
  });

  window.FrontdeskWidget = {
    open: () => open(),
    close: () => close(),
    send: (text) => submitText(text),
    end: () => endChat(),
    conversationId: () => convId,
  };

  function mount() {
    document.body.appendChild(host);
    if (START_OPEN) open(false);
    else if (store.get()) start(); // resume quietly so the history and live replies are ready
  }
  if (document.body) mount();
  else document.addEventListener('DOMContentLoaded', mount, { once: true });
})();
