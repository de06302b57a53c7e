/** How the starter keeps scripts off the pipeline's own network (README, "Runner network"). */
export interface IsolationSettings {
  /**
   * `enforce`: set up the runner bridge's firewall, check it and probe it from a sandbox at
   * start-up, and refuse to start when any of it fails. `off`: none of that, for development
   * on a machine whose firewall the starter must not touch (logged at every start).
   * (`PYTHON_RUNNER_NETWORK_ISOLATION`) @default 'enforce'
   */
  mode: 'enforce' | 'off';
  /**
   * Private destinations scripts may reach nonetheless: the SeaTable server
   * (`SEATABLE_SERVER_URL`, on its port) and `PYTHON_RUNNER_NETWORK_ALLOW`.
   */
  allow: AllowSpec[];
}

/** A destination as configured: a host name, an IPv4 address or an IPv4 range. */
export interface AllowSpec {
  host: string;
  /** Null for every port. */
  port: number | null;
  /** The variable it comes from. */
  setting: 'SEATABLE_SERVER_URL' | 'PYTHON_RUNNER_NETWORK_ALLOW';
}

type Read = (name: string) => string | undefined;

const hostPattern =
  /^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/;
const rangePattern = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/;

export function isolationSettings(read: Read, problems: string[]): IsolationSettings {
  const modeText = (read('PYTHON_RUNNER_NETWORK_ISOLATION') ?? 'enforce').toLowerCase();
  let mode: IsolationSettings['mode'] = 'enforce';
  if (modeText === 'off') mode = 'off';
  else if (modeText !== 'enforce') {
    problems.push(
      `PYTHON_RUNNER_NETWORK_ISOLATION: must be enforce or off, got ${JSON.stringify(modeText)}`,
    );
  }
  const allow = [...seatableServer(read, problems), ...allowList(read, problems)];
  return { mode, allow };
}

function seatableServer(read: Read, problems: string[]): AllowSpec[] {
  const text = read('SEATABLE_SERVER_URL');
  if (text === undefined) return [];
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    url = new URL('invalid:');
  }
  if (!/^https?:$/.test(url.protocol) || !hostPattern.test(url.hostname)) {
    problems.push(
      `SEATABLE_SERVER_URL: must be an http(s) URL with a host name or IPv4 address, got ${JSON.stringify(text)}`,
    );
    return [];
  }
  const port = url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port);
  return [{ host: url.hostname, port, setting: 'SEATABLE_SERVER_URL' }];
}

function allowList(read: Read, problems: string[]): AllowSpec[] {
  const text = read('PYTHON_RUNNER_NETWORK_ALLOW');
  if (text === undefined) return [];
  const entries = text
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean);
  const specs: AllowSpec[] = [];
  for (const entry of entries) {
    const spec = allowEntry(entry);
    if (spec) specs.push(spec);
    else {
      problems.push(
        `PYTHON_RUNNER_NETWORK_ALLOW: must be host[:port] or a.b.c.d/nn[:port], comma-separated, got ${JSON.stringify(entry)}`,
      );
    }
  }
  return specs;
}

function allowEntry(entry: string): AllowSpec | null {
  const [host = '', portText, extra] = entry.split(':');
  if (extra !== undefined) return null;
  const port = portText === undefined ? null : /^\d{1,5}$/.test(portText) ? Number(portText) : 0;
  if (port !== null && (port < 1 || port > 65_535)) return null;
  const range = rangePattern.exec(host);
  if (range) {
    const octets = range.slice(1, 5).map(Number);
    if (octets.some((octet) => octet > 255) || Number(range[5]) > 32) return null;
  } else if (!hostPattern.test(host)) return null;
  return { host, port, setting: 'PYTHON_RUNNER_NETWORK_ALLOW' };
}
