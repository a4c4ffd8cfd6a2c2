/**
 * F1 of issue 10: the agent never proxies to itself. Its in-pod listeners (15001, 15006, 15008)
 * bind every address of the pod, so a connection addressed to one of them, or one that reached
 * 15001 without the redirect (an app dialling 127.0.0.1:15001: loopback is never captured), would
 * make the agent connect to its own port again, and again. ztunnel refuses the same way
 * (its `SelfCall` error). Pure functions: the callers record and refuse.
 */
import { POD_AGENT_PORTS } from '../config.js';
import { WeftError } from '../errors.js';

/** Why a destination port is refused, or undefined. */
export function agentPortRefusal(address: string, port: number): WeftError | undefined {
  if (!POD_AGENT_PORTS.has(port)) return undefined;
  return new WeftError('WEFT_ERR_SELF_CALL', `destination ${address}:${port} is one of the agent's own ports`);
}

/**
 * An outbound connection whose original destination is the listener's own address did not come
 * through the redirect (after a REDIRECT the original destination is the app's target, never
 * the listener).
 */
export function notRedirectedRefusal(original: { address: string; port: number }, localAddress: string | undefined, localPort: number | undefined): WeftError | undefined {
  if (original.port !== localPort || original.address !== plainIp(localAddress)) return undefined;
  return new WeftError('WEFT_ERR_SELF_CALL', `connection to ${original.address}:${original.port} reached the outbound listener without the redirect`);
}

function plainIp(address: string | undefined): string | undefined {
  return address?.startsWith('::ffff:') ? address.slice(7) : address;
}
