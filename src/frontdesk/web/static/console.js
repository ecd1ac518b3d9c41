/*
 * Frontdesk agent console — the browser side of /console (plain ES2020, no dependencies).
 *
 * Signs in (or resumes the session via GET /api/console/me), then shows what the user's role
 * allows: agents get the queue (Waiting / Mine / All) and a conversation view with take over,
 * reply, notes, suggestions, hand back and resolve; reviewers rate bot replies; admins also
 * see handoff statistics and the audit log. Stays current through the /api/console/ws socket
 * ("changed" frames trigger a debounced refetch) with a 10 s queue poll as a fallback.
 *
 * All requests are same-origin; non-GET requests carry the session's X-CSRF-Token. Server
 * text goes into the page with textContent only, except a message's `html`, which the server
 * has already sanitised (nh3, no tags kept).
 */
(() => {
  'use strict';

  const API = '/api/console';
  const POLL_MS = 10000;
  const DEBOUNCE_MS = 300;
  const QUEUE_TABS = new Set(['waiting', 'mine', 'all']);
  const ROLES = new Set(['customer', 'bot', 'agent', 'system']);
  const LABELS = { customer: 'Customer', bot: 'Bot', agent: 'Agent' };
  const RATINGS = ['good', 'wrong', 'outdated', 'incomplete'];
  // The guard's checks, in plain words: what each one did to a reply before it was sent.
  const GUARD_HELP = {
    grounding: 'A claim not supported by the knowledge base or a tool result was replaced.',
    policy: 'A promise the company policy forbids was replaced.',
    tone: 'A phrase the guidelines forbid was replaced.',
    pii: 'Personal data was taken out of the reply.',
    length: 'The reply was too long and was cut to length.',
    prompt_leak: 'The reply revealed the hidden instructions and was replaced.',
    empty: 'The reply was empty and was replaced by the fallback text.',
  };

  const $ = (id) => document.getElementById(id);
  const enc = encodeURIComponent;

  // Session, the open conversation (request counters drop stale responses), live updates.
  const S = {
    user: null, csrf: null, tab: null, openId: null, detail: null, convReq: 0, queueReq: 0,
    msgConv: null, sugKey: null, busy: false, reviewSeq: 0,
    ws: null, wsRetry: 0, wsTimer: null, pollTimer: null, changed: new Set(), changeTimer: null,
  };

  // ---- Small helpers ----
  /** Build an element. props: className, text, dataset, attrs, on: {event: handler}. */
  function h(tag, props = {}, ...children) {
    const n = document.createElement(tag);
    if (props.className) n.className = props.className;
    if (props.text != null) n.textContent = String(props.text);
    for (const [k, v] of Object.entries(props.dataset || {})) n.dataset[k] = v == null ? '' : String(v);
    for (const [k, v] of Object.entries(props.attrs || {})) n.setAttribute(k, String(v));
    for (const [k, fn] of Object.entries(props.on || {})) n.addEventListener(k, fn);
    for (const c of children) if (c != null) n.append(c);
    return n;
  }

  /** Any value as one line of text: lists and objects' values joined, nothing as a dash. */
  function fmt(v) {
    if (v == null || v === '') return '—';
    if (Array.isArray(v)) return v.map(fmt).join(', ');
    if (typeof v === 'object') return Object.values(v).filter((x) => x != null && x !== '').map(fmt).join(', ');
    return String(v);
  }
  /** A person from the API ({id, name} or a plain string) as text. */
  const nameOf = (v) => (v && typeof v === 'object' ? fmt(v.name || v.email || v.id) : fmt(v));
  const human = (code) => (code ? String(code).replace(/[_-]+/g, ' ') : '—');
  const list = (a) => (Array.isArray(a) ? a : []);
  const percent = (x) => (typeof x !== 'number' ? '—' : x <= 1 ? Math.round(x * 100) + '%' : String(x));
  const badge = (text, kind) => h('span', { className: 'badge ' + (kind || ''), text });

  const date = (iso) => new Date(iso || NaN);
  const clock = (iso) => (isNaN(date(iso)) ? '' : date(iso).toLocaleTimeString([], { timeStyle: 'short' }));
  const stamp = (iso) => (isNaN(date(iso)) ? fmt(iso)
    : date(iso).toLocaleString([], { dateStyle: 'short', timeStyle: 'short' }));
  function ago(iso) {
    const t = Date.parse(iso);
    if (isNaN(t)) return '';
    const min = Math.floor(Math.max(0, Date.now() - t) / 60000);
    if (min < 1) return 'just now';
    if (min < 60) return min + ' min';
    const hrs = Math.floor(min / 60);
    if (hrs < 24) return hrs + ' h' + (min % 60 ? ' ' + (min % 60) + ' min' : '');
    return Math.floor(hrs / 24) + ' d';
  }

  const role = () => (S.user ? S.user.role : null);
  const isAgent = () => role() === 'agent' || role() === 'admin';
  const isReviewer = () => role() === 'reviewer' || role() === 'admin';
  const isAdmin = () => role() === 'admin';
  const isMine = (c) => !!(c && c.assigned_to && S.user && String(c.assigned_to.id) === String(S.user.id));

  // ---- API ----
  /** fetch wrapper (static/api.js): resolves to {ok, status, data, error}; never throws. A 401 ends the session. */
  const api = FrontdeskApi.client({
    prefix: API,
    csrf: () => S.csrf,
    onUnauthorized: (path) => { if (S.user && path !== '/login') sessionLost(); },
  });

  // ---- Notice area ----
  const noticeEl = $('notice-bar'), noticeText = $('console-notice'); // the testid holds only the text
  const forceBtn = $('take-over-force'), noticeClose = $('notice-close');
  /** kind: error | warn | ok. offerForce shows the "Take over anyway" button. */
  function notice(text, kind = 'error', offerForce = false) {
    noticeText.textContent = text;
    noticeEl.dataset.kind = kind;
    forceBtn.hidden = !offerForce;
    noticeClose.hidden = false;
  }
  function clearNotice() {
    noticeText.textContent = '';
    delete noticeEl.dataset.kind;
    forceBtn.hidden = noticeClose.hidden = true;
  }
  /** Report a failed request, unless it was a 401 (that one has already gone back to sign-in). */
  const fail = (r) => { if (r.status !== 401) notice(r.error.message); };
  noticeClose.addEventListener('click', clearNotice);

  // ---- Sign-in / sign-out ----
  const loginEmail = $('login-email'), loginPassword = $('login-password');
  const loginError = $('login-error'), loginSubmit = $('login-submit');

  function showLogin(message) {
    $('boot').hidden = $('app').hidden = true;
    $('login-view').hidden = false;
    loginError.textContent = message || '';
    loginError.hidden = !message;
    loginEmail.focus();
  }

  $('login-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    loginError.hidden = true;
    loginSubmit.disabled = true;
    const r = await api('POST', '/login', { email: loginEmail.value.trim(), password: loginPassword.value });
    loginSubmit.disabled = false;
    if (!r.ok || !r.data || !r.data.user) {
      loginError.textContent = r.error ? r.error.message : 'Sign-in failed.';
      loginError.hidden = false;
      return;
    }
    loginPassword.value = '';
    let csrf = r.data.csrf;
    if (!csrf) { const me = await api('GET', '/me'); csrf = me.ok && me.data ? me.data.csrf : null; }
    const next = new URLSearchParams(location.search).get('next') || '';
    // Back to the console page that sent the user here (same origin, /console/... only).
    if (/^\/console\/[a-z]/.test(next) && !/^\/console\/login\b/.test(next)) { location.replace(next); return; }
    if (/\/console\/login\/?$/.test(location.pathname)) history.replaceState(null, '', '/console');
    startApp(r.data.user, csrf);
  });

  $('logout').addEventListener('click', async () => {
    await api('POST', '/logout');
    teardown();
    showLogin();
  });

  function sessionLost() {
    if (!S.user) return;
    teardown();
    showLogin('Your session has ended. Please sign in again.');
  }

  function startApp(user, csrf) {
    S.user = user;
    S.csrf = csrf;
    $('boot').hidden = $('login-view').hidden = true;
    $('app').hidden = false;
    $('console-user').textContent = `${user.name || user.email} (${user.role})`;
    for (const t of QUEUE_TABS) $('queue-tab-' + t).hidden = !isAgent();
    $('tab-reviews').hidden = !isReviewer();
    $('tab-stats').hidden = !isAdmin();
    $('tab-analytics').hidden = !isReviewer(); // its own page: /console/analytics
    clearNotice();
    selectTab(isAgent() ? 'waiting' : isReviewer() ? 'reviews' : 'stats');
    connectSocket();
    S.pollTimer = setInterval(poll, POLL_MS);
  }

  /** Forget the session: socket, timers, and everything rendered. */
  function teardown() {
    clearInterval(S.pollTimer); clearTimeout(S.wsTimer); clearTimeout(S.changeTimer);
    if (S.ws) { const old = S.ws; S.ws = null; old.close(); } // S.ws cleared first: no reconnect
    Object.assign(S, { user: null, csrf: null, tab: null, openId: null, detail: null, msgConv: null,
      sugKey: null, busy: false, changeTimer: null, changed: new Set(), wsRetry: 0 });
    S.convReq++; S.queueReq++;
    ['queue-list', 'messages', 'review-list', 'reasons-body', 'audit-body', 'note-list', 'suggestion-list']
      .forEach((id) => $(id).replaceChildren());
    $('reply-input').value = $('note-input').value = '';
    $('stats-total').textContent = '–';
    $('suggestions').hidden = $('conv-view').hidden = true;
    $('conv-empty').hidden = false;
    $('conv-empty').textContent = 'Select a conversation from the queue.';
    clearNotice();
  }

  // ---- Tabs ----
  const tabButtons = Array.from(document.querySelectorAll('.tab[data-tab]'));
  tabButtons.forEach((b) => b.addEventListener('click', () => selectTab(b.dataset.tab)));

  function selectTab(tab) {
    S.tab = tab;
    for (const b of tabButtons) b.setAttribute('aria-selected', String(b.dataset.tab === tab));
    $('queue-layout').hidden = !QUEUE_TABS.has(tab);
    $('reviews-pane').hidden = tab !== 'reviews';
    $('stats-pane').hidden = tab !== 'stats';
    if (QUEUE_TABS.has(tab)) loadQueue();
    else if (tab === 'reviews') loadReviews();
    else if (tab === 'stats') loadStats();
  }

  // ---- Queue ----
  const queueList = $('queue-list');

  async function loadQueue() {
    const view = S.tab;
    if (!QUEUE_TABS.has(view) || !isAgent()) return;
    const req = ++S.queueReq;
    const r = await api('GET', '/queue?view=' + enc(view));
    if (req !== S.queueReq || view !== S.tab) return;
    if (r.ok) renderQueue(list(r.data && r.data.conversations)); else fail(r);
  }

  function renderQueue(items) {
    const focused = document.activeElement && document.activeElement.closest('.qi');
    queueList.replaceChildren(...items.map((it) => h('li', {}, queueItem(it))));
    $('queue-empty').hidden = items.length > 0;
    markOpenInQueue();
    if (focused) { // keep keyboard focus on the same conversation across refreshes
      const again = queueList.querySelector(`[data-conversation-id="${CSS.escape(focused.dataset.conversationId)}"]`);
      if (again) again.focus();
    }
  }

  function queueItem(it) {
    const who = it.assigned_to ? (isMine(it) ? 'You' : nameOf(it.assigned_to)) : 'Unassigned';
    const when = it.waiting_since ? 'waiting ' + ago(it.waiting_since) : 'updated ' + ago(it.updated_at);
    return h('button', {
      className: 'qi', attrs: { type: 'button' },
      dataset: { testid: 'queue-item', conversationId: it.id, status: it.status, mode: it.mode },
      on: { click: () => openConversation(it.id) },
    },
    h('span', { className: 'qi-top' },
      h('span', { className: 'qi-preview', text: it.preview || '(no messages yet)' }),
      h('span', { className: 'qi-badges' }, badge(it.status, 'st-' + it.status), badge(it.mode, 'md-' + it.mode))),
    it.reason ? h('span', { className: 'qi-reason', text: 'Handoff: ' + human(it.reason) }) : null,
    h('span', { className: 'qi-meta' }, h('span', { text: who }),
      h('span', { text: when, attrs: { title: stamp(it.waiting_since || it.updated_at) } })));
  }

  function markOpenInQueue() {
    for (const b of queueList.querySelectorAll('.qi')) {
      if (b.dataset.conversationId === S.openId) b.setAttribute('aria-current', 'true');
      else b.removeAttribute('aria-current');
    }
  }

  // ---- Conversation view ----
  const convView = $('conv-view'), msgList = $('messages'), replyInput = $('reply-input');
  const takeBtn = $('take-over'), handBtn = $('hand-back'), resolveBtn = $('resolve'), revealBtn = $('reveal');
  const replySend = $('reply-send'), noteInput = $('note-input'), convEmpty = $('conv-empty');

  function openConversation(id) {
    id = String(id);
    if (id !== S.openId) {
      Object.assign(S, { openId: id, detail: null, sugKey: null });
      replyInput.value = noteInput.value = '';
      $('suggestions').hidden = convView.hidden = true;
      convEmpty.hidden = false;
      convEmpty.textContent = 'Loading…';
      clearNotice();
    }
    markOpenInQueue();
    loadConversation();
  }

  async function loadConversation() {
    const id = S.openId;
    if (!id) return;
    const req = ++S.convReq;
    const r = await api('GET', '/conversations/' + enc(id));
    if (req !== S.convReq || id !== S.openId) return;
    if (r.ok) { showDetail(r.data); return; }
    fail(r);
    if (!S.detail && r.status !== 401) convEmpty.textContent = 'This conversation could not be loaded.';
  }

  function showDetail(d) {
    if (!d || !d.conversation) return;
    S.convReq++; // any older GET still in flight is now stale
    S.detail = d;
    const c = d.conversation, cid = String(c.id != null ? c.id : S.openId);
    Object.assign(convView.dataset, { conversationId: cid, status: c.status || '', mode: c.mode || '',
      assigned: c.assigned_to ? String(c.assigned_to.id) : '' });
    $('conv-title').textContent = 'Conversation ' + cid;
    const who = c.assigned_to ? 'Assigned to ' + (isMine(c) ? 'you' : nameOf(c.assigned_to)) : 'Unassigned';
    const started = c.created_at ? 'started ' + stamp(c.created_at) : '';
    $('conv-meta').replaceChildren(badge(c.status, 'st-' + c.status), badge(c.mode, 'md-' + c.mode),
      h('span', { text: [c.channel, who, started].filter(Boolean).join(' · ') }));
    applyControls();
    convView.hidden = false; // visible before rendering, so scrolling to the end works
    convEmpty.hidden = true;
    const msgs = list(d.messages);
    renderMessages(msgs);
    renderHandoff(d.handoff);
    renderCustomer(d.customer);
    renderNotes(list(d.notes));
    if (isMine(c)) forceBtn.hidden = true;
    const key = msgs.length + ':' + (msgs.length ? msgs[msgs.length - 1].id : '');
    if (isAgent() && key !== S.sugKey) { S.sugKey = key; loadSuggestions(); } // only when messages change
  }

  /** Show / enable the action buttons from the last known state of the open conversation. */
  function applyControls() {
    const c = (S.detail && S.detail.conversation) || {};
    const agent = isAgent(), mine = isMine(c);
    const canAct = agent && mine && c.mode === 'human' && !S.busy;
    takeBtn.hidden = !agent || mine;
    takeBtn.disabled = S.busy;
    handBtn.hidden = resolveBtn.hidden = $('reply-form').hidden = $('note-form').hidden = !agent;
    handBtn.disabled = replySend.disabled = !canAct;
    revealBtn.hidden = !agent;
    revealBtn.disabled = S.busy || !(mine || isAdmin());
    resolveBtn.disabled = !canAct || c.status === 'resolved';
    replyInput.placeholder = mine && c.mode === 'human'
      ? 'Write a reply… (Enter sends, Shift+Enter for a new line)' : 'Take over the conversation to reply';
  }

  function renderMessages(messages) {
    const sorted = messages.slice().sort((a, b) => (a.seq || 0) - (b.seq || 0));
    const ids = sorted.map((m) => String(m.id));
    const have = Array.from(msgList.children, (li) => li.dataset.id);
    // Append only what is new, so the live region announces just the new messages.
    const same = S.msgConv === S.openId && have.length <= ids.length && have.every((x, i) => x === ids[i]);
    const nearBottom = msgList.scrollHeight - msgList.scrollTop - msgList.clientHeight < 80;
    if (!same) msgList.replaceChildren();
    for (const m of sorted.slice(same ? have.length : 0)) msgList.append(messageRow(m));
    if (!same || nearBottom) msgList.scrollTop = msgList.scrollHeight;
    S.msgConv = S.openId;
  }

  /** Replace the tokens (<EMAIL_1>, ...) in the shown messages and handoff summary by the
   *  values the server revealed. Text nodes only: nothing revealed can become markup. */
  function showValues(values) {
    const swap = (t) => t.replace(/<[A-Z_]+_\d+>/g, (tok) => (Object.hasOwn(values, tok) ? values[tok] : tok));
    for (const root of [msgList, $('handoff-summary')]) {
      const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
      for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        const shown = swap(node.nodeValue || '');
        if (shown !== node.nodeValue) { node.nodeValue = shown; node.parentElement.classList.add('revealed'); }
      }
    }
  }

  async function reveal() {
    const r = await act('reveal');
    if (!r) return;
    if (!r.ok) { fail(r); return; }
    const values = (r.data && r.data.values) || {};
    showValues(values);
    notice(Object.keys(values).length ? 'Personal data shown. This view is recorded in the audit log.'
      : 'This conversation holds no personal data.', 'ok');
  }

  function messageRow(m) {
    const r = ROLES.has(m.role) ? m.role : 'system';
    const bubble = h('div', { className: 'bubble', dataset: { testid: 'conv-message', role: r, seq: m.seq } });
    bubble.innerHTML = m.html || ''; // sanitised server-side with nh3 (no tags kept)
    const mm = m.meta || {};
    const meta = [clock(m.created_at), typeof mm.confidence === 'number' ? 'confidence ' + percent(mm.confidence) : '',
      mm.flow ? 'flow ' + fmt(mm.flow) : '', mm.action ? 'action ' + fmt(mm.action) : ''];
    const cites = list(m.citations).map((c) => h('span', { className: 'cite', text: 'Source: ' + (c.title || c.id) }));
    const flags = [...list(mm.interventions).map(guardBadge), modelBadge(mm.model)].filter(Boolean);
    return h('li', { className: 'msg ' + r, dataset: { id: m.id } },
      LABELS[r] ? h('div', { className: 'msg-label', text: LABELS[r] }) : null,
      bubble,
      cites.length ? h('div', { className: 'cites' }, ...cites) : null,
      flags.length ? h('div', { className: 'msg-flags', dataset: { testid: 'reply-flags' } }, ...flags) : null,
      h('div', { className: 'msg-meta', text: meta.filter(Boolean).join(' · ') }));
  }

  /** A guard check that changed this reply before it was sent, explained on hover (title) and
   *  to screen readers (hidden text). */
  function guardBadge(check) {
    const help = GUARD_HELP[check] || 'This check changed the reply before it was sent.';
    return h('span', { className: 'badge guard', dataset: { testid: 'guard-badge', check }, attrs: { title: help } },
      'guard: ' + human(check), h('span', { className: 'sr', text: ' (' + help + ')' }));
  }

  /** Which model wrote this reply, or that it was unavailable and the extractive answer was sent. */
  function modelBadge(model) {
    if (!model || typeof model !== 'object') return null;
    const name = [model.model, model.backend ? '(' + model.backend + ')' : ''].filter(Boolean).join(' ') || 'a model';
    const tokens = typeof model.prompt_tokens === 'number' || typeof model.completion_tokens === 'number'
      ? ` ${fmt(model.prompt_tokens)} prompt + ${fmt(model.completion_tokens)} completion tokens.` : '';
    if (model.fallback) {
      // A guard check the model's reply failed, or the model could not answer (down, timeout, budget).
      const rejected = Object.hasOwn(GUARD_HELP, model.fallback);
      const why = rejected
        ? `The reply of ${name} failed the ${human(model.fallback)} check: the built-in answer was sent instead.`
        : `${name} could not be used (${human(model.fallback)}): the built-in answer was sent instead.`;
      const label = (rejected ? 'model reply rejected' : 'model unavailable') + ': extractive answer';
      return h('span', { className: 'badge model fallback', dataset: { testid: 'model-badge', fallback: model.fallback },
        attrs: { title: why } }, label, h('span', { className: 'sr', text: ' (' + why + ')' }));
    }
    return h('span', { className: 'badge model', dataset: { testid: 'model-badge' },
      attrs: { title: `Written by ${name}.${tokens}` } }, 'model: ' + (model.model || model.backend || '?'));
  }

  /** A definition list from [label, value] pairs. */
  const dl = (pairs) => h('dl', {}, ...pairs.flatMap(([k, v]) => [h('dt', { text: k }), h('dd', { text: fmt(v) })]));
  /** A <ul> of items (text or nodes), or a muted line when there are none. */
  const ulOr = (items, none, className) => (items.length
    ? h('ul', { className }, ...items.map((x) => (x instanceof Node ? h('li', {}, x) : h('li', { text: fmt(x) }))))
    : h('p', { className: 'muted', text: none }));

  function renderHandoff(hd) {
    const box = $('handoff-summary');
    box.hidden = !hd;
    if (!hd) { box.replaceChildren(); return; }
    const s = hd.summary || {};
    box.replaceChildren(
      h('h3', { text: 'Handoff' }),
      h('p', { className: 'handoff-reason' }, h('strong', { text: human(hd.reason) }),
        h('span', { className: 'muted', text: hd.created_at ? ' · ' + stamp(hd.created_at) : '' })),
      dl([['Wants', s.wants], ['Customer', s.customer], ['Sentiment', s.sentiment]]),
      h('h4', { text: 'The bot already' }), ulOr(list(s.bot_did), 'Nothing recorded.'));
  }

  function renderCustomer(cu) {
    const box = $('customer-panel');
    if (!cu) {
      box.replaceChildren(h('h3', { text: 'Customer' }), h('p', { className: 'muted unverified', text: 'Not verified' }));
      return;
    }
    const orders = list(cu.orders).map((o) => {
      const total = typeof o.total === 'number' ? o.total.toFixed(2) : o.total;
      const row = document.createDocumentFragment();
      row.append(h('div', { className: 'order-head' }, h('strong', { text: '#' + fmt(o.id) }), badge(o.status, 'order'),
        total != null ? h('span', { className: 'muted', text: fmt(total) }) : null));
      if (list(o.items).length) row.append(ulOr(o.items, '', 'items'));
      return row;
    });
    box.replaceChildren(
      h('h3', { text: 'Customer' }),
      dl([['Name', cu.name], ['Email', cu.email], ['Address', cu.address]]),
      h('h4', { text: 'Payment methods' }), ulOr(list(cu.payment_methods), 'None on file.'),
      h('h4', { text: 'Orders' }), ulOr(orders, 'No orders.', 'orders'));
  }

  function renderNotes(notes) {
    $('note-list').replaceChildren(...notes.map((n) => h('li', { className: 'note', dataset: { testid: 'note' } },
      h('p', { text: n.text }),
      h('div', { className: 'muted', text: nameOf(n.author) + (n.created_at ? ' · ' + stamp(n.created_at) : '') }))));
  }

  async function loadSuggestions() {
    const id = S.openId;
    const r = await api('GET', `/conversations/${enc(id)}/suggestions`);
    if (id !== S.openId) return;
    const items = list(r.ok && r.data && r.data.suggestions);
    $('suggestions').hidden = !items.length;
    $('suggestion-list').replaceChildren(...items.map((s) => h('button', {
      className: 'suggestion', text: s.text, dataset: { testid: 'suggestion', kind: s.kind },
      attrs: { type: 'button', title: human(s.kind) + (s.source ? ' · source: ' + fmt(s.source) : '') },
      on: { click: () => { replyInput.value = s.text || ''; replyInput.focus(); } },
    })));
  }

  // ---- Conversation actions ----
  /** POST an action on the open conversation; the buttons stay disabled while it runs. */
  async function act(path, body) {
    const id = S.openId;
    if (!id || S.busy) return null;
    S.busy = true;
    applyControls();
    const r = await api('POST', `/conversations/${enc(id)}/${path}`, body);
    S.busy = false;
    if (id !== S.openId) return null;
    applyControls();
    return r;
  }

  async function take(force) {
    const r = await act('take', force ? { force: true } : {});
    if (!r) return;
    if (r.ok) {
      clearNotice();
      if (r.data && r.data.conversation) showDetail(r.data); else loadConversation();
      loadQueue();
    } else if (r.status === 409 && r.error.code === 'taken') {
      notice(r.error.message, 'warn', true);
      loadConversation(); // show who has it now
    } else {
      fail(r);
    }
  }

  /** Hand back / resolve: report the outcome, then refresh. */
  async function simpleAction(path, done) {
    const r = await act(path);
    if (!r) return;
    if (r.ok) notice(done, 'ok'); else fail(r);
    loadConversation();
    loadQueue();
  }

  async function sendReply() {
    const text = replyInput.value.trim();
    if (!text) return;
    const r = await act('reply', { text });
    if (!r) return;
    if (!r.ok) { fail(r); return; }
    if (replyInput.value.trim() === text) replyInput.value = ''; // keep anything typed meanwhile
    clearNotice();
    loadConversation();
  }

  takeBtn.addEventListener('click', () => take(false));
  forceBtn.addEventListener('click', () => take(true));
  handBtn.addEventListener('click', () => simpleAction('handback', 'Handed back to the bot.'));
  revealBtn.addEventListener('click', reveal);
  resolveBtn.addEventListener('click', () => simpleAction('resolve', 'Conversation resolved.'));
  $('reply-form').addEventListener('submit', (e) => { e.preventDefault(); sendReply(); });
  replyInput.addEventListener('keydown', (e) => {
    // Enter sends; Shift+Enter inserts a newline; Enter while composing (IME) is left alone.
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); sendReply(); }
  });
  $('note-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const id = S.openId, text = noteInput.value.trim();
    if (!id || !text) return;
    $('note-add').disabled = true;
    const r = await api('POST', `/conversations/${enc(id)}/notes`, { text });
    $('note-add').disabled = false;
    if (id !== S.openId) return;
    if (!r.ok) { fail(r); return; }
    if (noteInput.value.trim() === text) noteInput.value = '';
    loadConversation();
  });

  // ---- Reviews ----
  const reviewList = $('review-list');

  /** Keeps items already shown (and what the reviewer typed there): drops gone ones, appends new. */
  async function loadReviews() {
    if (!isReviewer()) return;
    const r = await api('GET', '/reviews/queue');
    if (S.tab !== 'reviews') return;
    if (!r.ok) { fail(r); return; }
    const items = list(r.data && r.data.items);
    const wanted = new Set(items.map((it) => String(it.message_id)));
    const shown = new Set();
    for (const el of Array.from(reviewList.children)) {
      if (wanted.has(el.dataset.messageId)) shown.add(el.dataset.messageId); else el.remove();
    }
    for (const it of items) if (!shown.has(String(it.message_id))) reviewList.append(reviewItem(it));
    $('reviews-empty').hidden = reviewList.children.length > 0;
  }

  function reviewItem(it) {
    const fieldId = 'rv-corr-' + ++S.reviewSeq;
    let rating = null;
    const buttons = RATINGS.map((name) => h('button', {
      className: 'btn rate rate-' + name, text: name,
      dataset: { testid: 'rate-' + name }, attrs: { type: 'button', 'aria-pressed': 'false' },
      on: { click: (e) => {
        rating = name;
        for (const b of buttons) b.setAttribute('aria-pressed', String(b === e.currentTarget));
      } },
    }));
    const correction = h('textarea', { attrs: { id: fieldId, rows: 3, maxlength: 4000 },
      dataset: { testid: 'review-correction' } });
    // A correction can also become a regression test (the question must now get this answer).
    const saveTest = h('input', { attrs: { type: 'checkbox', id: fieldId + '-test', disabled: '' },
      dataset: { testid: 'review-save-test' } });
    const saveTestHint = h('span', { className: 'review-check-hint', text: '(write a corrected answer first)' }); // part of the label's name
    correction.addEventListener('input', () => {
      const written = correction.value.trim() !== '';
      saveTest.disabled = !written;
      if (!written) saveTest.checked = false;
      saveTestHint.hidden = written;
    });
    const submit = h('button', { className: 'btn primary', text: 'Submit', attrs: { type: 'button' },
      dataset: { testid: 'review-submit' } });
    const score = typeof it.score === 'number' ? it.score.toFixed(2) : fmt(it.score);
    const item = h('article', { className: 'card review', dataset: { testid: 'review-item', messageId: it.message_id } },
      h('div', { className: 'review-head' },
        badge('score ' + score, 'score'), badge('confidence ' + percent(it.confidence), 'conf'),
        ...list(it.reasons).map((x) => badge(human(x), 'reason')),
        h('span', { className: 'muted', text: 'conversation ' + fmt(it.conversation_id) })),
      h('h3', { text: 'Question' }), h('p', { className: 'qa', text: it.question }),
      h('h3', { text: 'Bot answer' }), h('p', { className: 'qa answer', text: it.answer }),
      h('div', { className: 'rating', attrs: { role: 'group', 'aria-label': 'Rating' } }, ...buttons),
      h('label', { text: 'Corrected answer (optional)', attrs: { for: fieldId } }), correction,
      h('div', { className: 'review-foot' },
        h('label', { className: 'review-check', attrs: { for: saveTest.id } }, saveTest, 'Also save as a regression test', saveTestHint),
        submit));

    submit.addEventListener('click', async () => {
      if (!rating) { notice('Choose a rating first.', 'warn'); return; }
      const body = { message_id: it.message_id, rating };
      const text = correction.value.trim();
      if (text) body.correction = text;
      if (text && saveTest.checked) body.save_test = true;
      submit.disabled = true;
      const r = await api('POST', '/reviews', body);
      submit.disabled = false;
      if (!r.ok) { fail(r); return; }
      item.remove();
      $('reviews-empty').hidden = reviewList.children.length > 0;
      const approved = r.data && r.data.approved_answer;
      const version = approved && approved.version != null ? ' version ' + approved.version : '';
      const saved = r.data && r.data.regression_test;
      notice((approved ? `Saved. Approved answer${version}.` : 'Saved.') +
        (saved ? ` Regression test saved to ${saved}.` : ''), 'ok');
    });
    return item;
  }

  // ---- Stats (admins) ----
  const emptyRow = (text, span) => h('tr', {}, h('td', { className: 'muted', text, attrs: { colspan: span } }));

  async function loadStats() {
    if (!isAdmin()) return;
    const [s, a] = await Promise.all([api('GET', '/stats/handoffs?days=30'), api('GET', '/audit?limit=100')]);
    if (S.tab !== 'stats') return;
    if (s.ok && s.data) {
      const reasons = list(s.data.reasons);
      const max = Math.max(1, ...reasons.map((x) => Number(x.count) || 0));
      $('stats-total').textContent = String(s.data.total != null ? s.data.total : 0);
      $('reasons-body').replaceChildren(...reasons.map((x) => {
        const bar = h('span', { className: 'bar' });
        bar.style.width = Math.round(((Number(x.count) || 0) / max) * 100) + '%';
        return h('tr', { dataset: { testid: 'handoff-reason', reason: x.reason, count: x.count } },
          h('td', { text: human(x.reason) }), h('td', { className: 'num', text: fmt(x.count) }),
          h('td', { className: 'bar-cell' }, bar));
      }));
      if (!reasons.length) $('reasons-body').append(emptyRow('No handoffs.', 3));
    } else fail(s);
    if (a.ok && a.data) {
      const entries = list(a.data.entries);
      const detail = (d) => (d == null ? '' : typeof d === 'object' ? JSON.stringify(d) : String(d));
      $('audit-body').replaceChildren(...entries.map((x) => h('tr', { dataset: { testid: 'audit-entry' } },
        h('td', { text: stamp(x.at) }), h('td', { text: nameOf(x.user) }), h('td', { text: human(x.action) }),
        h('td', { text: fmt(x.conversation_id) }), h('td', { className: 'detail', text: detail(x.detail) }))));
      if (!entries.length) $('audit-body').append(emptyRow('No entries.', 5));
    } else fail(a);
  }

  // ---- Live updates: WebSocket with backoff, debounced refetch, polling fallback ----
  function connectSocket() {
    if (!S.user || S.ws) return;
    let sock;
    try {
      sock = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + API + '/ws');
    } catch { scheduleReconnect(); return; }
    S.ws = sock;
    sock.onopen = () => {
      if (S.wsRetry) changed(null); // reconnected: catch up on whatever was missed
      S.wsRetry = 0;
    };
    sock.onmessage = (ev) => {
      let f;
      try { f = JSON.parse(ev.data); } catch { return; }
      if (S.ws === sock && f && f.type === 'changed') changed(f.conversation_id);
    };
    sock.onclose = (ev) => {
      if (S.ws !== sock) return; // closed on purpose
      S.ws = null;
      if ([1008, 4401, 4403].includes(ev.code)) api('GET', '/me'); // a 401 there signs out
      scheduleReconnect();
    };
  }

  function scheduleReconnect() {
    if (!S.user) return;
    const delay = Math.min(1000 * 2 ** S.wsRetry, 10000); // 1 s, 2 s, 4 s, 8 s, then 10 s
    S.wsRetry++;
    clearTimeout(S.wsTimer);
    S.wsTimer = setTimeout(connectSocket, delay);
  }

  /** Note a change (null: everything) and refetch at most once per DEBOUNCE_MS. */
  function changed(id) {
    S.changed.add(id == null ? '*' : String(id));
    if (!S.changeTimer) S.changeTimer = setTimeout(flushChanges, DEBOUNCE_MS);
  }

  function flushChanges() {
    const ids = S.changed;
    S.changed = new Set();
    S.changeTimer = null;
    if (!S.user) return;
    if (QUEUE_TABS.has(S.tab)) loadQueue();
    if (S.openId && (ids.has('*') || ids.has(S.openId))) loadConversation();
    if (S.tab === 'reviews') loadReviews();
  }

  function poll() {
    if (!S.user) return;
    if (QUEUE_TABS.has(S.tab)) loadQueue();
    if (S.openId && !(S.ws && S.ws.readyState === WebSocket.OPEN)) loadConversation();
  }

  // ---- Start ----
  (async () => {
    const r = await api('GET', '/me');
    if (r.ok && r.data && r.data.user) startApp(r.data.user, r.data.csrf);
    else showLogin(r.status === 401 || r.status === 403 || !r.error ? '' : r.error.message);
  })();
})();
