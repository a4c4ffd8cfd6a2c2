// The bookinfo end-to-end suite (local source) with the agents on node:http2
// (`--hbone-impl node`), so that the selectable alternative to the default lean framer keeps
// holding the mesh's main suite in every run. Needs root.
import { bookinfoSuite } from './bookinfo-suite.js';
import { testLabName } from '../helpers/bookinfo.js';

// Read by the lab when it starts the agents (before hooks run after this module's body).
process.env['WEFT_HBONE_IMPL'] = 'node';
bookinfoSuite({ lab: testLabName('e2enode'), kubernetes: false, hboneImpl: 'node' });
