// A pod that only idles (a place to run `weft lab exec` in); exits on SIGTERM.
process.stdout.write(`${process.env.POD_NAME ?? 'idle'} idling\n`);
const timer = setInterval(() => {}, 1 << 30);
const stop = () => {
  clearInterval(timer);
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
