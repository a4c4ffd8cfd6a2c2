// The bookinfo end-to-end suite against the local source (manifests directory), the agents on
// the process default HBONE implementation (lean unless WEFT_HBONE_IMPL says). Needs root.
import { bookinfoSuite } from './bookinfo-suite.js';
import { testLabName } from '../helpers/bookinfo.js';
import { defaultHboneImpl } from '../../agent/tunnel/impl.js';

bookinfoSuite({ lab: testLabName('e2e'), kubernetes: false, hboneImpl: defaultHboneImpl() });
