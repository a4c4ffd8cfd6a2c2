// The bookinfo end-to-end suite against the local source (manifests directory). Needs root.
import { bookinfoSuite } from './bookinfo-suite.js';

bookinfoSuite({ lab: 'e2e', kubernetes: false });
