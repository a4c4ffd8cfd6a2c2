/**
 * Headless Debian Chromium for browser tests, driven over the DevTools protocol (the protocol
 * puppeteer-core and playwright-core speak; this is the small part of it the tests need, over
 * the `ws` client the project already has). No browser download: /usr/bin/chromium, which
 * scripts/setup.sh installs. Every browser runs with its own temporary profile, removed on close.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import WebSocket from 'ws';

export const CHROMIUM = '/usr/bin/chromium';
const START_TIMEOUT_MS = 20_000;
const CALL_TIMEOUT_MS = 15_000;

/** Why browser tests cannot run here, or undefined when they can. */
export function chromiumMissing(): string | undefined {
  return existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is not installed (scripts/setup.sh installs Debian's chromium package; apt-get install chromium)`;
}

interface CdpMessage {
  id?: number;
  method?: string;
  params?: Record<string, unknown>;
  result?: Record<string, unknown>;
  error?: { message: string };
}

export interface Page {
  goto(url: string): Promise<void>;
  /** Evaluates an expression in the page (promises awaited), returning its JSON value. */
  evaluate<T>(expression: string): Promise<T>;
  /** A real mouse click (move, press, release) at page coordinates. */
  click(x: number, y: number): Promise<void>;
  screenshot(file: string): Promise<void>;
  /** Every URL the page requested since it was opened. */
  readonly requests: string[];
  /** Uncaught exceptions and console errors of the page. */
  readonly errors: string[];
}

export interface Browser {
  page: Page;
  close(): Promise<void>;
}

export async function launchChromium(options: { width?: number; height?: number } = {}): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), 'weft-chromium-'));
  const width = options.width ?? 1400;
  const height = options.height ?? 900;
  const child: ChildProcess = spawn(
    CHROMIUM,
    ['--headless=new', '--no-sandbox', '--disable-gpu', '--no-first-run', '--no-default-browser-check', '--disable-extensions', '--remote-debugging-port=0', `--user-data-dir=${profile}`, `--window-size=${width},${height}`, 'about:blank'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let ws: WebSocket | undefined;
  const cleanup = async (): Promise<void> => {
    ws?.close();
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3_000);
      await gone;
      clearTimeout(timer);
    }
    // Chromium's helper processes (crashpad, utility) may still write into the profile for a
    // moment after the browser exits: rmSync's own retries on ENOTEMPTY/EBUSY cover that.
    rmSync(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  };
  try {
    const browserWs = await new Promise<string>((resolve, reject) => {
      let text = '';
      const timer = setTimeout(() => reject(new Error(`chromium printed no DevTools address within ${START_TIMEOUT_MS} ms:\n${text}`)), START_TIMEOUT_MS);
      child.stderr!.setEncoding('utf8').on('data', (c: string) => {
        text += c;
        const m = /DevTools listening on (ws:\/\/\S+)/.exec(text);
        if (m !== null) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`chromium exited (${code}) before listening:\n${text}`));
      });
    });
    const port = new URL(browserWs).port;
    const targets = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as { type: string; webSocketDebuggerUrl: string }[];
    const target = targets.find((t) => t.type === 'page');
    if (target === undefined) throw new Error('chromium has no page target');
    ws = new WebSocket(target.webSocketDebuggerUrl, { perMessageDeflate: false });
    await new Promise<void>((resolve, reject) => {
      ws!.once('open', () => resolve());
      ws!.once('error', reject);
    });
    const page = makePage(ws, width, height);
    await page.init();
    return { page, close: cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

function makePage(ws: WebSocket, width: number, height: number): Page & { init(): Promise<void> } {
  let nextId = 1;
  const pending = new Map<number, { resolve: (r: Record<string, unknown>) => void; reject: (e: Error) => void }>();
  const listeners: ((m: CdpMessage) => void)[] = [];
  const requests: string[] = [];
  const errors: string[] = [];
  ws.on('message', (data: Buffer) => {
    const msg = JSON.parse(data.toString('utf8')) as CdpMessage;
    if (msg.id !== undefined) {
      const p = pending.get(msg.id);
      pending.delete(msg.id);
      if (msg.error !== undefined) p?.reject(new Error(msg.error.message));
      else p?.resolve(msg.result ?? {});
      return;
    }
    if (msg.method === 'Network.requestWillBeSent') requests.push(String((msg.params?.['request'] as { url: string }).url));
    if (msg.method === 'Runtime.exceptionThrown') errors.push(JSON.stringify((msg.params?.['exceptionDetails'] as { exception?: { description?: string } }).exception?.description ?? msg.params));
    if (msg.method === 'Runtime.consoleAPICalled' && msg.params?.['type'] === 'error') errors.push(JSON.stringify(msg.params['args']));
    for (const l of listeners) l(msg);
  });
  const call = (method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`${method}: no answer from chromium within ${CALL_TIMEOUT_MS} ms`));
      }, CALL_TIMEOUT_MS);
      pending.set(id, {
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      ws.send(JSON.stringify({ id, method, params }));
    });
  const evaluate = async <T>(expression: string): Promise<T> => {
    const r = (await call('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true })) as { result?: { value?: T }; exceptionDetails?: { text: string; exception?: { description?: string } } };
    if (r.exceptionDetails !== undefined) throw new Error(`in the page: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`);
    return r.result?.value as T;
  };
  return {
    requests,
    errors,
    init: async () => {
      await call('Page.enable');
      await call('Runtime.enable');
      await call('Network.enable');
      await call('Emulation.setDeviceMetricsOverride', { width, height, deviceScaleFactor: 1, mobile: false });
    },
    goto: async (url: string) => {
      const loaded = new Promise<void>((resolve) => {
        const l = (m: CdpMessage): void => {
          if (m.method === 'Page.loadEventFired') {
            listeners.splice(listeners.indexOf(l), 1);
            resolve();
          }
        };
        listeners.push(l);
      });
      const r = (await call('Page.navigate', { url })) as { errorText?: string };
      if (r.errorText !== undefined) throw new Error(`navigate to ${url}: ${r.errorText}`);
      await loaded;
    },
    evaluate,
    click: async (x: number, y: number) => {
      await call('Input.dispatchMouseEvent', { type: 'mouseMoved', x, y });
      await call('Input.dispatchMouseEvent', { type: 'mousePressed', x, y, button: 'left', buttons: 1, clickCount: 1 });
      await call('Input.dispatchMouseEvent', { type: 'mouseReleased', x, y, button: 'left', buttons: 0, clickCount: 1 });
    },
    screenshot: async (file: string) => {
      const r = (await call('Page.captureScreenshot', { format: 'png' })) as { data: string };
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, Buffer.from(r.data, 'base64'));
    },
  };
}
