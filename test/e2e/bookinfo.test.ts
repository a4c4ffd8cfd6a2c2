// The bookinfo end-to-end suite against the local source (manifests directory). Needs root.
import { bookinfoSuite } from './bookinfo-suite.js';
import { testLabName } from '../helpers/bookinfo.js';

bookinfoSuite({ lab: testLabName('e2e'), kubernetes: false });
