/**
 * A stand-in for bin/start.ts in test/http/start.test.ts: it stops on SIGINT as bin/start.ts does,
 * while its event loop is blocked 200 ms at a time, as a loaded machine blocks it.
 */
process.on("SIGINT", () => {
  console.log("SIGINT: stopping");
  process.exit(0);
});
console.log("ready");
setInterval(() => {
  const until = Date.now() + 200;
  while (Date.now() < until) {
    // busy
  }
}, 10);
