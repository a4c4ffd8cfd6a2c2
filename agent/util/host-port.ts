import { WeftError } from '../errors.js';

/** "host:port" (IPv6 in brackets) from a command-line option; WEFT_ERR_CONFIG naming the text otherwise. */
export function parseHostPort(text: string): { host: string; port: number } {
  const i = text.lastIndexOf(':');
  const portText = text.slice(i + 1);
  const port = Number(portText);
  if (i <= 0 || !/^\d+$/.test(portText) || port > 65535) {
    throw new WeftError('WEFT_ERR_CONFIG', `expected host:port, got ${JSON.stringify(text)}`);
  }
  return { host: text.slice(0, i).replace(/^\[(.*)\]$/, '$1'), port };
}
