// The bookinfo end-to-end suite (local source) with the agents on Weft's own HTTP/2 framer
// (`--hbone-impl lean`, issue 15 point 4), so that the lean path holds the mesh's main suite in
// every run while node:http2 stays the default. Needs root.
import { bookinfoSuite } from './bookinfo-suite.js';
import { testLabName } from '../helpers/bookinfo.js';

// Read by the lab when it starts the agents (before hooks run after this module's body).
process.env['WEFT_HBONE_IMPL'] = 'lean';
bookinfoSuite({ lab: testLabName('e2elean'), kubernetes: false, hboneImpl: 'lean' });
