/**
 * The CRDs of Weft's traffic kinds (HTTPFault, LocalRateLimitPolicy), in the form policy/crd.ts
 * renders into daemonset/crds/ with the policy kinds (one generator, one kustomization).
 */
import type { TSchema } from '@sinclair/typebox';
import { HTTP_FAULT_KIND, HTTPFaultSpec, LocalRateLimitPolicySpec, RATE_LIMIT_KIND } from './schema.js';

type Json = { [key: string]: unknown };

export interface TrafficCrdKind {
  kind: string;
  plural: string;
  singular: string;
  description: string;
  spec: Json;
  columns: { name: string; type: string; jsonPath: string; description?: string }[];
}

// A copy: one sub-schema used twice (Percentage) would otherwise be written as a YAML alias.
const json = (s: TSchema): Json => JSON.parse(JSON.stringify(s)) as Json;

export const WEFT_TRAFFIC_CRD_KINDS: TrafficCrdKind[] = [
  {
    kind: HTTP_FAULT_KIND,
    plural: 'httpfaults',
    singular: 'httpfault',
    description:
      'Fault injection (delay, abort) for the HTTPRoute and GRPCRoute rules that name it by an ExtensionRef filter (group weft.dev, kind HTTPFault) in its namespace, in the shape of Istio\'s VirtualService fault. A rule naming a missing HTTPFault answers 500.',
    spec: json(HTTPFaultSpec),
    columns: [
      { name: 'Delay', type: 'string', jsonPath: '.spec.delay.fixedDelay' },
      { name: 'Abort', type: 'integer', jsonPath: '.spec.abort.httpStatus' },
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
    ],
  },
  {
    kind: RATE_LIMIT_KIND,
    plural: 'localratelimitpolicies',
    singular: 'localratelimitpolicy',
    description:
      'A token bucket per waypoint on HTTPRoutes, GRPCRoutes (or one rule of them, by sectionName) or Services of its namespace: a request without a token is answered 429 (response flag RL). The most specific target wins (rule, route, Service); of two on one target the oldest.',
    spec: json(LocalRateLimitPolicySpec),
    columns: [
      { name: 'Max', type: 'integer', jsonPath: '.spec.tokenBucket.maxTokens' },
      { name: 'Interval', type: 'string', jsonPath: '.spec.tokenBucket.fillInterval' },
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
    ],
  },
];
