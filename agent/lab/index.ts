/** The lab's programmatic API: see lab.ts. */
export {
  labUp,
  labDown,
  labStatus,
  labApply,
  labDelete,
  labExec,
  type LabUpOptions,
  type LabUpResult,
  type LabDownOptions,
  type LabDownResult,
  type LabChangeOptions,
  type LabDeleteResult,
  type LabExecOptions,
  type ExecResult,
  type LabStatus,
  type NodeStatus,
  type PodStatus,
  type ServiceStatus,
  type ContainerStatus,
  type ChangeSummary,
} from './lab.js';
export { DEFAULT_LAB_DIR, DEFAULT_LAB_NAME, labPaths, labPrefix, podNetns, nodeNetns, fabricNetns } from './paths.js';
export { labRestartAgent, labStopCa, labStartCa, type RestartAgentResult } from './agent-control.js';
export { cniAdd, cniDel, cniCheck, cniVersion, CNI_PLUGIN, type CniPodCall, type CniCallResult } from './cni.js';
