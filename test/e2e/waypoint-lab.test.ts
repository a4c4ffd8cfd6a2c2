// Issue 11's "done when" in the lab on the local source (manifests directory); see waypoint-suite.ts. Needs root.
import { waypointSuite } from './waypoint-suite.js';

waypointSuite({ lab: 'audit1', kubernetes: false });
