/** `:authority` of an HBONE CONNECT: the original destination as `ip:port` (`[v6]:port`). */
import { isIP } from 'node:net';

export interface Authority {
  host: string;
  port: number;
}

/** Parses `ip:port`; undefined for host names, missing or out-of-range ports. */
export function parseAuthority(authority: string | undefined): Authority | undefined {
  if (authority === undefined) return undefined;
  let host: string;
  let portText: string;
  if (authority.startsWith('[')) {
    const close = authority.indexOf(']:');
    if (close < 0) return undefined;
    host = authority.slice(1, close);
    if (isIP(host) !== 6) return undefined;
    portText = authority.slice(close + 2);
  } else {
    const colon = authority.indexOf(':');
    if (colon < 0 || authority.indexOf(':', colon + 1) >= 0) return undefined;
    host = authority.slice(0, colon);
    if (isIP(host) !== 4) return undefined;
    portText = authority.slice(colon + 1);
  }
  if (!/^[0-9]{1,5}$/.test(portText)) return undefined;
  const port = Number(portText);
  if (port < 1 || port > 65535) return undefined;
  return { host, port };
}

export function formatAuthority(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}
