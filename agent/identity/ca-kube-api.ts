/** `CaKubeApi` on @kubernetes/client-node: the CA's Secret and ConfigMap calls (ca-bootstrap.ts). */
import { ApiException, CoreV1Api, type KubeConfig, type V1ConfigMap, type V1Secret } from '@kubernetes/client-node';
import type { CaKubeApi, KubeDataObject } from './ca-bootstrap.js';

function statusOf(err: unknown): number | undefined {
  return err instanceof ApiException ? err.code : undefined;
}

async function orUndefinedOn404<T>(p: Promise<T>): Promise<T | undefined> {
  try {
    return await p;
  } catch (err) {
    if (statusOf(err) === 404) return undefined;
    throw err;
  }
}

function fromSecret(s: V1Secret): KubeDataObject {
  const data: Record<string, string> = {};
  for (const [k, v] of Object.entries(s.data ?? {})) data[k] = Buffer.from(v, 'base64').toString('utf8');
  for (const [k, v] of Object.entries(s.stringData ?? {})) data[k] = v;
  return { data, labels: s.metadata?.labels ?? {}, resourceVersion: s.metadata?.resourceVersion ?? '' };
}

function fromConfigMap(c: V1ConfigMap): KubeDataObject {
  return { data: { ...(c.data ?? {}) }, labels: c.metadata?.labels ?? {}, resourceVersion: c.metadata?.resourceVersion ?? '' };
}

export class KubernetesCaApi implements CaKubeApi {
  readonly #core: CoreV1Api;

  constructor(kubeConfig: KubeConfig) {
    this.#core = kubeConfig.makeApiClient(CoreV1Api);
  }

  async readSecret(namespace: string, name: string): Promise<KubeDataObject | undefined> {
    const s = await orUndefinedOn404(this.#core.readNamespacedSecret({ namespace, name }));
    return s === undefined ? undefined : fromSecret(s);
  }

  async createSecret(namespace: string, name: string, data: Record<string, string>, labels: Record<string, string>): Promise<'created' | 'exists'> {
    const encoded = Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'utf8').toString('base64')]));
    try {
      await this.#core.createNamespacedSecret({ namespace, body: { apiVersion: 'v1', kind: 'Secret', type: 'Opaque', metadata: { name, namespace, labels }, data: encoded } });
      return 'created';
    } catch (err) {
      if (statusOf(err) === 409) return 'exists';
      throw err;
    }
  }

  async readConfigMap(namespace: string, name: string): Promise<KubeDataObject | undefined> {
    const c = await orUndefinedOn404(this.#core.readNamespacedConfigMap({ namespace, name }));
    return c === undefined ? undefined : fromConfigMap(c);
  }

  async createConfigMap(namespace: string, name: string, data: Record<string, string>, labels: Record<string, string>): Promise<'created' | 'exists'> {
    try {
      await this.#core.createNamespacedConfigMap({ namespace, body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace, labels }, data } });
      return 'created';
    } catch (err) {
      if (statusOf(err) === 409) return 'exists';
      throw err;
    }
  }

  async replaceConfigMap(namespace: string, name: string, data: Record<string, string>, labels: Record<string, string>, resourceVersion: string): Promise<'replaced' | 'conflict' | 'gone'> {
    try {
      await this.#core.replaceNamespacedConfigMap({ namespace, name, body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace, labels, resourceVersion }, data } });
      return 'replaced';
    } catch (err) {
      const status = statusOf(err);
      if (status === 409) return 'conflict';
      if (status === 404) return 'gone';
      throw err;
    }
  }
}
