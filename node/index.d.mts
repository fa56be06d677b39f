export * from './dist/index.js';
import * as smartretry from './dist/index.js';
export default smartretry;
