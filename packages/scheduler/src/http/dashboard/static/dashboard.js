// The operators' dashboard: plain DOM, no framework, no build step, nothing from elsewhere.
// Every piece of text that comes from the API (script names, owners, output) is hostile: it is
// only ever set as text (textContent, text nodes), never parsed as HTML.

const tokenKey = 'pipeline.adminToken';
const chartDays = 14;
const refreshMs = 5000;
const svgNamespace = 'http://www.w3.org/2000/svg';

const view = {
  selectedRunId: null,
  shownState: null,
  live: null,
  timer: null,
};

// ---- Small DOM helpers -------------------------------------------------------------------

function element(tag, attributes, ...children) {
  const node = document.createElement(tag);
  setAttributes(node, attributes);
  for (const child of children) appendChild(node, child);
  return node;
}

function svgElement(tag, attributes, ...children) {
  const node = document.createElementNS(svgNamespace, tag);
  setAttributes(node, attributes);
  for (const child of children) appendChild(node, child);
  return node;
}

function setAttributes(node, attributes) {
  for (const [name, value] of Object.entries(attributes ?? {})) {
    if (value !== undefined && value !== null) node.setAttribute(name, String(value));
  }
}

function appendChild(node, child) {
  if (child === null || child === undefined) return;
  node.append(typeof child === 'string' || typeof child === 'number' ? String(child) : child);
}

function byId(id) {
  return document.getElementById(id);
}

// ---- Formatting --------------------------------------------------------------------------

/** Times are shown in the scheduler's zone (`TIME_ZONE`), whatever offset an answer uses. */
let timeFormat = null;

function useTimeZone(timeZone) {
  if (timeFormat?.resolvedOptions().timeZone === timeZone) return;
  timeFormat = new Intl.DateTimeFormat('en-GB', {
    timeZone,
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hourCycle: 'h23',
  });
  byId('time-zone').textContent = `times in ${timeZone}`;
}

/** `12-04 17:03:07`: month, day and time of day. */
function shortTime(value) {
  if (!value) return '';
  const instant = new Date(value);
  if (Number.isNaN(instant.getTime())) return String(value);
  const parts = {};
  for (const part of (timeFormat ?? new Intl.DateTimeFormat('en-GB')).formatToParts(instant)) {
    parts[part.type] = part.value;
  }
  return `${parts.month}-${parts.day} ${parts.hour}:${parts.minute}:${parts.second}`;
}

function seconds(value) {
  if (value === null || value === undefined) return '';
  if (value >= 100) return `${Math.round(value)} s`;
  return `${Math.round(value * 10) / 10} s`;
}

/** Whole seconds, as the run's times are; a run within one second shows as under 1 s. */
function runTime(run) {
  if (!run.started_at || !run.finished_at) return '';
  const elapsed = (Date.parse(run.finished_at) - Date.parse(run.started_at)) / 1000;
  return elapsed < 1 ? '<1 s' : `${elapsed} s`;
}

function stateOf(run) {
  if (run.state === 'finished') return run.success ? 'succeeded' : 'failed';
  return run.state ?? 'pending';
}

function stateBadge(run) {
  const state = stateOf(run);
  return element('span', { class: `state ${state}`, 'data-state': state }, state);
}

function shortUuid(uuid) {
  return `${String(uuid).slice(0, 8)}…`;
}

// ---- The API, always with the token in the header ------------------------------------------

function token() {
  return sessionStorage.getItem(tokenKey);
}

class TokenRefused extends Error {}

async function api(path) {
  const response = await fetch(path, {
    headers: { Authorization: `Token ${token()}`, Accept: 'application/json' },
    cache: 'no-store',
  });
  if (response.status === 403) throw new TokenRefused('the token was refused');
  if (!response.ok) throw new Error(`${path} answered ${response.status}`);
  return await response.json();
}

// ---- Sign in and out -----------------------------------------------------------------------

function showLogin(message) {
  stopLive();
  clearInterval(view.timer);
  byId('dashboard').hidden = true;
  byId('sign-out').hidden = true;
  byId('login').hidden = false;
  byId('login-error').textContent = message ?? '';
  byId('token').focus();
}

function signOut(message) {
  sessionStorage.removeItem(tokenKey);
  showLogin(message);
}

async function signIn(event) {
  event.preventDefault();
  const input = byId('token');
  sessionStorage.setItem(tokenKey, input.value.trim());
  input.value = '';
  try {
    await api('/admin/runs/?per_page=1');
  } catch (error) {
    signOut(error instanceof TokenRefused ? 'That token was refused.' : String(error.message));
    return;
  }
  await showDashboard();
}

async function showDashboard() {
  byId('login').hidden = true;
  byId('dashboard').hidden = false;
  byId('sign-out').hidden = false;
  await refresh();
  clearInterval(view.timer);
  view.timer = setInterval(() => void refresh(), refreshMs);
  await selectRunFromHash();
}

/** `#run=<id>` names the run shown, so a link to the dashboard can open one. */
async function selectRunFromHash() {
  const fromHash = /^#run=(\d+)$/.exec(location.hash);
  if (fromHash && Number(fromHash[1]) !== view.selectedRunId) await selectRun(Number(fromHash[1]));
}

async function refresh() {
  try {
    // TODO(#8): the list is the 25 newest runs; paging and the org, base and time filters
    // that /admin/runs/ takes are not offered yet; an older run opens by #run=<id>.
    const [runs, fleet, statistics] = await Promise.all([
      api('/admin/runs/?per_page=25'),
      api('/admin/fleet/').catch(() => null),
      api(`/admin/dashboard/statistics/?days=${chartDays}`),
    ]);
    useTimeZone(statistics.time_zone);
    renderRuns(runs.runs);
    renderFleet(fleet);
    renderCharts(statistics);
    renderTiles(runs, fleet, statistics);
    byId('refreshed').textContent = `updated ${shortTime(new Date()).slice(6)}`;
    const selected = runs.runs.find((run) => run.id === view.selectedRunId);
    if (selected && stateOf(selected) !== view.shownState && !view.live) {
      await selectRun(selected.id);
    }
  } catch (error) {
    if (error instanceof TokenRefused) signOut('The token was refused; sign in again.');
    else byId('refreshed').textContent = `not updated: ${error.message}`;
  }
}

// ---- Tiles, runs, fleet ----------------------------------------------------------------------

function renderTiles(runs, fleet, statistics) {
  const runCount = statistics.by_day.reduce((sum, day) => sum + day.runs, 0);
  const runTime = statistics.by_day.reduce((sum, day) => sum + day.run_time, 0);
  const running = runs.runs.filter((run) => run.state === 'running').length;
  const tiles = [
    ['tile-runs', runCount, `runs in ${chartDays} days`],
    ['tile-run-time', seconds(runTime), `run time in ${chartDays} days`],
    ['tile-running', running, 'running now'],
    ['tile-starters', fleet ? fleet.starters.length : '?', 'starters'],
    ['tile-slots', fleet ? `${fleet.busy_slots} / ${fleet.total_slots}` : '?', 'slots busy'],
  ];
  byId('tiles').replaceChildren(
    ...tiles.map(([id, value, label]) =>
      element(
        'div',
        { class: 'tile', id },
        element('span', { class: 'value' }, value),
        element('span', { class: 'label' }, label),
      ),
    ),
  );
}

function renderRuns(runs) {
  const body = byId('runs').tBodies[0];
  body.replaceChildren(
    ...runs.map((run) => {
      const row = element(
        'tr',
        { 'data-run-id': run.id, class: run.id === view.selectedRunId ? 'selected' : null },
        element('td', null, run.id),
        element('td', { title: run.dtable_uuid }, run.script_name),
        element('td', null, run.owner ?? ''),
        element('td', null, run.org_id === -1 ? '—' : run.org_id),
        element('td', null, stateBadge(run)),
        element('td', null, shortTime(run.created_at)),
        element('td', null, runTime(run)),
      );
      row.addEventListener('click', () => void selectRun(run.id, run));
      return row;
    }),
  );
  if (runs.length === 0) {
    body.append(element('tr', null, element('td', { colspan: 7, class: 'muted' }, 'No runs yet.')));
  }
}

function renderFleet(fleet) {
  const body = byId('fleet').tBodies[0];
  if (!fleet) {
    body.replaceChildren(
      element('tr', null, element('td', { colspan: 6, class: 'muted' }, 'Fleet unavailable.')),
    );
    return;
  }
  body.replaceChildren(
    ...fleet.starters.map((starter) =>
      element(
        'tr',
        { 'data-starter-id': starter.starter_id },
        element('td', null, starter.starter_id),
        element('td', null, starter.host),
        element('td', null, `${starter.busy} / ${starter.slots}`),
        element('td', null, starter.draining ? 'draining' : 'taking runs'),
        element('td', null, shortTime(starter.started_at)),
        element('td', null, shortTime(starter.last_seen)),
      ),
    ),
  );
  if (fleet.starters.length === 0) {
    body.append(element('tr', null, element('td', { colspan: 6, class: 'muted' }, 'No starter.')));
  }
}

// ---- One run: facts, output (live while it runs), events -------------------------------------

async function selectRun(runId, listed) {
  stopLive();
  view.selectedRunId = runId;
  history.replaceState(null, '', `#run=${runId}`);
  for (const row of byId('runs').tBodies[0].rows) {
    row.classList.toggle('selected', row.dataset.runId === String(runId));
  }
  byId('run-hint').hidden = true;
  byId('run-title').textContent = `Run ${runId}`;

  const run = listed ?? (await requestedRun(runId));
  if (!run) {
    byId('run-hint').hidden = false;
    byId('run-hint').textContent = 'The log has no run of that id.';
    return;
  }
  const detail = await loadRunDetails(run);
  if (!detail || view.selectedRunId !== runId) return;
  const output = byId('run-output');
  if (detail.state === 'finished') {
    output.textContent = detail.output ?? '';
  } else {
    output.textContent = '';
    followLive(run);
  }
}

/** A run not in the list: its base and script name come from its request in the log. */
async function requestedRun(runId) {
  const answer = await api(`/admin/runs/${runId}/events/`).catch(() => ({ events: [] }));
  const request = answer.events.find((entry) => entry.type === 'RunRequested');
  if (!request) return null;
  return {
    id: runId,
    dtable_uuid: request.event.data.dtableUuid,
    script_name: request.event.data.scriptName,
  };
}

/** The run's facts and its events, read again; the output is left as it is. */
async function loadRunDetails(run) {
  const query = `dtable_uuid=${encodeURIComponent(run.dtable_uuid)}&script_name=${encodeURIComponent(run.script_name)}`;
  const [detail, events] = await Promise.all([
    api(`/run-script/${run.id}/?${query}`).then((answer) => answer.script),
    api(`/admin/runs/${run.id}/events/`).catch(() => ({ events: [] })),
  ]);
  if (view.selectedRunId !== run.id) return null;
  renderFacts(detail);
  renderEvents(events.events);
  view.shownState = stateOf(detail);
  return detail;
}

function renderFacts(run) {
  const facts = [
    ['State', stateBadge(run)],
    ['Script', run.script_name],
    ['Base', run.dtable_uuid],
    ['Owner', run.owner ?? ''],
    ['Org', run.org_id === -1 ? 'none' : run.org_id],
    ['Trigger', run.operate_from ?? ''],
    ['Requested', shortTime(run.created_at)],
    ['Started', shortTime(run.started_at)],
    ['Finished', shortTime(run.finished_at)],
    ['Return code', run.return_code ?? ''],
  ];
  byId('run-facts').replaceChildren(
    ...facts.flatMap(([term, value]) => [element('dt', null, term), element('dd', null, value)]),
  );
}

function eventDetails(entry) {
  const data = entry.event?.data ?? {};
  switch (entry.type) {
    case 'RunRequested':
      return `${data.owner} ran ${data.scriptName} (${data.operateFrom})`;
    case 'RunClaimed':
      return `claimed by ${data.starterId} on ${data.host}`;
    case 'RunStarted':
      return `container ${String(data.containerId ?? '').slice(0, 12)} on ${data.starterId}`;
    case 'RunOutputChunk':
      return `output piece ${data.index} (${String(data.text ?? '').length} characters)`;
    case 'RunRejected':
      return `rejected: ${data.reason}`;
    case 'RunCancelRequested':
      return `cancel asked by ${data.requestedBy}`;
    case 'RunFinished': {
      const flags = ['timedOut', 'outOfMemory', 'cancelled', 'lost', 'outputTruncated']
        .filter((flag) => data[flag])
        .join(', ');
      const verdict = data.success ? 'succeeded' : 'failed';
      return `${verdict}, return code ${data.returnCode}, ${data.durationMs} ms${flags ? `, ${flags}` : ''}`;
    }
    default:
      return '';
  }
}

function renderEvents(events) {
  byId('run-events').tBodies[0].replaceChildren(
    ...events.map((entry) =>
      element(
        'tr',
        { 'data-event-type': entry.type },
        element('td', null, entry.seq),
        element('td', null, shortTime(entry.time)),
        element('td', null, entry.type),
        element('td', null, eventDetails(entry)),
      ),
    ),
  );
}

// ---- Live output: server-sent events read through fetch, so the token goes in the header ----

function stopLive() {
  view.live?.abort();
  view.live = null;
  byId('run-live').hidden = true;
}

function followLive(run) {
  const runId = run.id;
  const controller = new AbortController();
  view.live = controller;
  // While it runs, its state and its events are read again each second: the timeline grows.
  const details = setInterval(() => void loadRunDetails(run).catch(() => {}), 1000);
  controller.signal.addEventListener('abort', () => clearInterval(details));
  byId('run-live').hidden = false;
  const output = byId('run-output');
  let received = 0;

  const onOutput = (piece) => {
    let text = piece.text;
    if (piece.offset > received) {
      output.append(element('span', { class: 'gap' }, '[… output not received …]\n'));
    } else if (piece.offset < received) {
      text = text.slice(received - piece.offset);
    }
    output.append(document.createTextNode(text));
    received = piece.offset + piece.text.length;
    output.scrollTop = output.scrollHeight;
  };
  const onEnd = (end) => {
    output.textContent = end.output ?? '';
    stopLive();
    view.selectedRunId = null;
    void selectRun(runId).then(() => refresh());
  };

  void readEventStream(`/admin/runs/${runId}/output/live/`, controller.signal, (name, data) => {
    if (name === 'output') onOutput(data);
    if (name === 'end') onEnd(data);
  }).catch((error) => {
    if (error.name !== 'AbortError') byId('run-live').textContent = 'live output stopped';
  });
}

async function readEventStream(path, signal, onEvent) {
  const response = await fetch(path, {
    headers: { Authorization: `Token ${token()}`, Accept: 'text/event-stream' },
    cache: 'no-store',
    signal,
  });
  if (!response.ok || !response.body) throw new Error(`${path} answered ${response.status}`);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffered = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    buffered += decoder.decode(value, { stream: true });
    let end = buffered.indexOf('\n\n');
    while (end >= 0) {
      const block = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      const event = parseEventBlock(block);
      if (event) onEvent(event.name, event.data);
      end = buffered.indexOf('\n\n');
    }
  }
}

function parseEventBlock(block) {
  let name = 'message';
  const data = [];
  for (const line of block.split('\n')) {
    if (line.startsWith('event: ')) name = line.slice(7);
    else if (line.startsWith('data: ')) data.push(line.slice(6));
  }
  return data.length === 0 ? null : { name, data: JSON.parse(data.join('\n')) };
}

// ---- Charts: inline SVG, labels set as text ------------------------------------------------

function renderCharts(statistics) {
  const days = statistics.by_day.map((day) => ({ label: day.date.slice(5), date: day.date }));
  columnChart(
    byId('chart-runs-by-day'),
    statistics.by_day.map((day, index) => ({ ...days[index], value: day.runs })),
    (value) => String(value),
  );
  columnChart(
    byId('chart-time-by-day'),
    statistics.by_day.map((day, index) => ({ ...days[index], value: day.run_time })),
    (value) => seconds(value),
  );
  pairedBarChart(
    byId('chart-by-org'),
    statistics.by_org.map((org) => ({
      label: `org ${org.org_id}`,
      title: String(org.org_id),
      ...org,
    })),
    'No org has run anything in these days.',
  );
  pairedBarChart(
    byId('chart-by-base'),
    statistics.by_base.map((base) => ({
      label: shortUuid(base.base_uuid),
      title: base.base_uuid,
      ...base,
    })),
    'No base has run anything in these days.',
  );
}

function columnChart(container, points, format) {
  const width = 640;
  const height = 180;
  const left = 8;
  const bottom = 22;
  const top = 16;
  const max = Math.max(1, ...points.map((point) => point.value));
  const slot = (width - left * 2) / Math.max(1, points.length);
  const chart = svgElement('svg', {
    viewBox: `0 0 ${width} ${height}`,
    role: 'img',
    'aria-label': container.id,
  });
  chart.append(
    svgElement('line', {
      x1: left,
      x2: width - left,
      y1: height - bottom,
      y2: height - bottom,
      stroke: '#d9e2ec',
    }),
  );
  points.forEach((point, index) => {
    const barHeight = ((height - bottom - top) * point.value) / max;
    const x = left + index * slot + slot * 0.15;
    const bar = svgElement(
      'rect',
      {
        class: 'bar',
        x,
        y: height - bottom - barHeight,
        width: slot * 0.7,
        height: barHeight,
        'data-label': point.date,
        'data-value': point.value,
      },
      svgElement('title', null, `${point.date}: ${format(point.value)}`),
    );
    chart.append(bar);
    if (point.value > 0) {
      chart.append(
        svgElement(
          'text',
          {
            class: 'value',
            x: x + slot * 0.35,
            y: height - bottom - barHeight - 3,
            'text-anchor': 'middle',
          },
          format(point.value),
        ),
      );
    }
    if (points.length <= 10 || (points.length - 1 - index) % 2 === 0) {
      chart.append(
        svgElement(
          'text',
          { x: x + slot * 0.35, y: height - 7, 'text-anchor': 'middle' },
          point.label,
        ),
      );
    }
  });
  container.replaceChildren(chart);
}

function pairedBarChart(container, rows, emptyText) {
  if (rows.length === 0) {
    container.replaceChildren(element('div', { class: 'empty' }, emptyText));
    return;
  }
  const width = 640;
  const rowHeight = 32;
  const labelWidth = 100;
  const valueWidth = 120;
  const barSpace = width - labelWidth - valueWidth;
  const height = rows.length * rowHeight + 6;
  const maxRuns = Math.max(1, ...rows.map((row) => row.runs));
  const maxTime = Math.max(0.1, ...rows.map((row) => row.run_time));
  const chart = svgElement('svg', {
    viewBox: `0 0 ${width} ${height}`,
    role: 'img',
    'aria-label': container.id,
  });
  rows.forEach((row, index) => {
    const y = index * rowHeight + 4;
    chart.append(
      svgElement('text', { x: 0, y: y + 15 }, row.label, svgElement('title', null, row.title)),
      svgElement('rect', {
        class: 'bar',
        x: labelWidth,
        y,
        width: Math.max(1, (barSpace * row.runs) / maxRuns),
        height: 11,
        'data-label': row.title,
        'data-value': row.runs,
      }),
      svgElement('rect', {
        class: 'bar second',
        x: labelWidth,
        y: y + 13,
        width: Math.max(1, (barSpace * row.run_time) / maxTime),
        height: 9,
        'data-label': row.title,
        'data-run-time': row.run_time,
      }),
      svgElement(
        'text',
        { class: 'value', x: width - valueWidth + 6, y: y + 15 },
        `${row.runs} runs · ${seconds(row.run_time)}`,
      ),
    );
  });
  container.replaceChildren(chart);
}

// ---- Start -------------------------------------------------------------------------------------

document.addEventListener('DOMContentLoaded', () => {
  byId('login-form').addEventListener('submit', (event) => void signIn(event));
  byId('sign-out').addEventListener('click', () => signOut('Signed out.'));
  window.addEventListener('hashchange', () => {
    if (token() && !byId('dashboard').hidden) void refresh().then(() => selectRunFromHash());
  });
  if (token()) void showDashboard();
  else showLogin();
});
