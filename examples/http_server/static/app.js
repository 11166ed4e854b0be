// The demo page: plain JavaScript over the HTTP API, no build step.
// /?autotest=1 runs the whole flow by itself (queue, charge, hold, pay) and
// writes the outcome into #autotest-result, for the headless browser test.
'use strict';

const $ = (id) => document.getElementById(id);
const state = { userId: '', token: null, concertId: 0, scheduleId: 0, seats: [], selected: new Set(), hold: null };

function log(text, isError) {
  const li = document.createElement('li');
  li.textContent = new Date().toISOString().slice(11, 23) + '  ' + text;
  if (isError) li.className = 'error';
  $('log').prepend(li);
}

function newKey() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  return 'k-' + Date.now().toString(36) + '-' + Math.random().toString(36).slice(2);
}

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || ('HTTP ' + status));
    this.status = status;
    this.body = body || {};
  }
}

async function api(method, path, body, extraHeaders) {
  const headers = Object.assign({}, extraHeaders || {});
  if (state.token) headers['X-QUEUE-TOKEN'] = state.token;
  const init = { method, headers };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  const data = res.status === 204 ? null : await res.json().catch(() => null);
  if (!res.ok) throw new ApiError(res.status, data);
  return { status: res.status, data };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const points = (n) => Number(n).toLocaleString('en-US');
const userPath = () => '/v1/wallets/' + encodeURIComponent(state.userId);

function describeError(e) {
  const b = e.body || {};
  let text = (e.status ? e.status + ' ' : '') + (b.error || 'error') + ': ' + e.message;
  if (b.conflicts && b.conflicts.length) text += ' (seats ' + b.conflicts.join(', ') + ')';
  return text;
}

async function guarded(what, fn) {
  try {
    return await fn();
  } catch (e) {
    log(what + ' failed: ' + describeError(e), true);
    throw e;
  }
}

// ---- catalog -------------------------------------------------------------

async function loadConcerts() {
  const { data } = await api('GET', '/v1/concerts');
  const select = $('concert');
  select.innerHTML = '';
  for (const c of data) {
    const option = new Option(c.title + ' (#' + c.id + ')', c.id);
    select.add(option);
  }
  state.concertId = data.length ? data[0].id : 0;
  if (state.concertId) await loadSchedules();
}

async function loadSchedules() {
  const { data } = await api('GET', '/v1/concerts/' + state.concertId + '/schedules');
  const select = $('schedule');
  select.innerHTML = '';
  for (const s of data) {
    const when = new Date(s.startsAt).toUTCString().replace(':00 GMT', ' UTC');
    select.add(new Option(when + ' - ' + s.venue + ' (' + s.availableSeats + ' free)', s.id));
  }
  state.scheduleId = data.length ? data[0].id : 0;
  if (state.scheduleId) await loadSeats();
}

async function loadSeats() {
  const { data } = await api('GET', '/v1/schedules/' + state.scheduleId + '/seats');
  state.seats = data;
  renderSeats();
}

function renderSeats() {
  const map = $('seat-map');
  map.innerHTML = '';
  for (const seat of state.seats) {
    const b = document.createElement('button');
    const selected = state.selected.has(seat.seatNo);
    b.className = 'seat ' + seat.grade + ' ' + (selected ? 'selected' : seat.status);
    b.textContent = seat.seatNo;
    b.title = 'seat ' + seat.seatNo + ' - ' + seat.grade + ' - ' + points(seat.price) + ' points - ' + seat.status;
    b.dataset.seatNo = seat.seatNo;
    b.disabled = seat.status !== 'AVAILABLE';
    b.addEventListener('click', () => toggleSeat(seat.seatNo));
    map.appendChild(b);
  }
  const grades = new Map();
  for (const seat of state.seats) if (!grades.has(seat.grade)) grades.set(seat.grade, seat.price);
  $('prices').textContent = [...grades].map(([g, p]) => g + ' ' + points(p)).join(' \u00b7 ') + ' points';
  renderSelection();
}

function toggleSeat(seatNo) {
  if (state.selected.has(seatNo)) state.selected.delete(seatNo);
  else state.selected.add(seatNo);
  renderSeats();
}

function renderSelection() {
  const seats = state.seats.filter((s) => state.selected.has(s.seatNo));
  const total = seats.reduce((sum, s) => sum + s.price, 0);
  $('selection').textContent = seats.length
    ? 'Selected ' + seats.map((s) => s.seatNo).join(', ') + ': ' + points(total) + ' points'
    : 'Pick seats, then hold them.';
  $('hold').disabled = !seats.length || !state.token;
}

// ---- queue ---------------------------------------------------------------

function showQueue(q) {
  let text = q.status;
  if (q.status === 'WAITING') text += ' - position ' + q.position + ', about ' + q.estimatedWaitSeconds + ' s';
  if (q.status === 'ACTIVE') text += ' until ' + new Date(q.activeUntil).toLocaleTimeString();
  $('queue-status').textContent = text;
}

async function enterQueue() {
  state.userId = $('user-id').value.trim();
  state.token = null;
  const { status, data } = await api('POST', '/v1/queue/tokens', { userId: state.userId, concertId: state.concertId });
  state.token = data.token;
  log((status === 201 ? 'entered the queue' : 'already in the queue') + ' as ' + state.userId + ': ' + data.status);
  showQueue(data);
  await refreshBalance();
  return waitUntilActive(data);
}

// Polls the token status (a heartbeat) until admitted; the ACTIVE token
// replaces the waiting one.
async function waitUntilActive(q) {
  for (let i = 0; q.status === 'WAITING' && i < 600; i++) {
    await sleep(1000);
    q = (await api('GET', '/v1/queue/tokens/me')).data;
    state.token = q.token;
    showQueue(q);
  }
  if (q.status !== 'ACTIVE') throw new Error('the queue token is ' + q.status);
  log('admitted: token ACTIVE');
  renderSelection();
  return q;
}

// ---- wallet, hold, pay -------------------------------------------------------

async function refreshBalance() {
  const { data } = await api('GET', userPath());
  $('balance').textContent = points(data.balance);
  return data.balance;
}

async function charge(amount) {
  const { data } = await api('POST', userPath() + '/charge', { amount }, { 'Idempotency-Key': newKey() });
  $('balance').textContent = points(data.balance);
  log('charged ' + points(amount) + ', balance ' + points(data.balance));
}

function showHold() {
  const h = state.hold;
  $('hold-status').textContent = h
    ? 'Hold #' + h.holdId + ': seats ' + h.seatNos.join(', ') + ', ' + points(h.amount) + ' points, until ' + new Date(h.expiresAt).toLocaleTimeString()
    : 'No hold.';
  $('pay').disabled = $('release').disabled = !h;
}

async function hold(seatNos) {
  const { data } = await api('POST', '/v1/holds', { scheduleId: state.scheduleId, seatNos });
  state.hold = data;
  state.selected.clear();
  log('held seats ' + data.seatNos.join(', ') + ' as hold #' + data.holdId);
  showHold();
  await loadSeats();
  return data;
}

async function release() {
  await api('DELETE', '/v1/holds/' + state.hold.holdId);
  log('released hold #' + state.hold.holdId);
  state.hold = null;
  showHold();
  await loadSeats();
}

async function pay() {
  const { data } = await api('POST', '/v1/payments', { holdId: state.hold.holdId }, { 'Idempotency-Key': newKey() });
  log('paid ' + points(data.amount) + ': reservation #' + data.reservationId + ', balance ' + points(data.balance));
  $('reservation').textContent = 'Reservation #' + data.reservationId + ' confirmed (payment #' + data.paymentId + ').';
  $('balance').textContent = points(data.balance);
  state.hold = null;
  showHold();
  await loadSeats();
  return data;
}

// ---- the scripted flow for the browser test -------------------------------------

async function autotest() {
  const out = $('autotest-result');
  out.hidden = false;
  out.dataset.result = 'running';
  try {
    $('user-id').value = 'autotest-' + Math.random().toString(36).slice(2, 10);
    await enterQueue();
    const seat = state.seats.find((s) => s.status === 'AVAILABLE');
    if (!seat) throw new Error('no free seat');
    state.selected.add(seat.seatNo);
    renderSeats();
    const h = await hold([seat.seatNo]);
    const balance = await refreshBalance();
    if (balance < h.amount) await charge(h.amount - balance);
    const p = await pay();
    const after = state.seats.find((s) => s.seatNo === seat.seatNo);
    if (!after || after.status !== 'RESERVED') throw new Error('seat ' + seat.seatNo + ' is not RESERVED after paying');
    out.dataset.result = 'pass';
    out.dataset.reservationId = p.reservationId;
    out.dataset.seatNo = seat.seatNo;
    out.dataset.userId = state.userId;
    out.textContent = 'PASS reservation ' + p.reservationId + ' seat ' + seat.seatNo + ' user ' + state.userId;
  } catch (e) {
    out.dataset.result = 'fail';
    out.textContent = 'FAIL ' + (e.status ? describeError(e) : e.message);
  }
}

// ---- wiring ------------------------------------------------------------------

function wire() {
  $('user-id').value = 'guest-' + Math.random().toString(36).slice(2, 8);
  $('concert').addEventListener('change', (e) => { state.concertId = Number(e.target.value); guarded('loading schedules', loadSchedules); });
  $('schedule').addEventListener('change', (e) => { state.scheduleId = Number(e.target.value); state.selected.clear(); guarded('loading seats', loadSeats); });
  $('refresh-seats').addEventListener('click', () => guarded('loading seats', loadSeats));
  $('enter-queue').addEventListener('click', () => guarded('entering the queue', enterQueue).catch(() => {}));
  $('charge').addEventListener('click', () => guarded('charging', () => charge(Number($('charge-amount').value))).catch(() => {}));
  $('hold').addEventListener('click', () => guarded('holding', () => hold([...state.selected].sort((a, b) => a - b))).catch(() => loadSeats()));
  $('release').addEventListener('click', () => guarded('releasing', release).catch(() => {}));
  $('pay').addEventListener('click', () => guarded('paying', pay).catch(() => {}));
}

async function main() {
  wire();
  showHold();
  try {
    await loadConcerts();
  } catch (e) {
    log('loading the catalog failed: ' + describeError(e), true);
  }
  if (new URLSearchParams(location.search).get('autotest') === '1') await autotest();
}

main();
