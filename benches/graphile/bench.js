// Graphile Worker 0.17 on the same job as orderly's queue bench: each job
// writes one row; 4 concurrent jobs per process.
//
//   node bench.js <postgres url> <jobs> [batched|plain] [processes]
//
// `batched` (the default): the local queue (size 8) and batched completion
// on, Graphile's fastest setting; `plain`: both off; `batched-noop`: the
// fastest setting with jobs that do nothing (timed until none is left). The main process
// enqueues, starts <processes> worker processes (`node bench.js worker …`),
// and times from their start until every job's row is written.
const { spawn } = require("child_process");
const { run, runMigrations } = require("graphile-worker");
const { Client } = require("pg");

function preset(mode) {
  if (mode === "plain" || mode === "plain-noop") return { worker: {} };
  return { worker: { localQueue: { size: 8 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 } };
}

async function worker(connectionString, mode) {
  const runner = await run({
    connectionString,
    concurrency: 4,
    noHandleSignals: true,
    pollInterval: 5,
    preset: preset(mode),
    taskList: {
      touch: async (payload, helpers) => {
        if (mode.endsWith("-noop")) return;
        await helpers.query("INSERT INTO touched_gw (id) VALUES ($1)", [payload.id]);
      },
    },
  });
  process.on("SIGTERM", async () => {
    await runner.stop();
    process.exit(0);
  });
}

async function main() {
  const [connectionString, jobsArg, modeArg, processesArg] = process.argv.slice(2);
  const jobs = Number(jobsArg || 5000);
  const mode = modeArg || "batched";
  const processes = Number(processesArg || 1);
  const c = new Client({ connectionString });
  await c.connect();
  await runMigrations({ connectionString });
  await c.query("CREATE TABLE IF NOT EXISTS touched_gw (id BIGINT PRIMARY KEY)");
  await c.query("TRUNCATE touched_gw; DELETE FROM graphile_worker._private_jobs");
  await c.query("SELECT graphile_worker.add_job('touch', json_build_object('id', i)) FROM generate_series(1, $1::int) i", [jobs]);
  const started = Date.now();
  const children = [];
  for (let i = 0; i < processes; i++) {
    children.push(spawn(process.execPath, [__filename, "worker", connectionString, mode], { stdio: "ignore" }));
  }
  const noop = mode.endsWith("-noop");
  for (;;) {
    if (noop) {
      // A completed job is deleted from the queue.
      const r = await c.query("SELECT count(*)::int AS n FROM graphile_worker._private_jobs");
      if (r.rows[0].n === 0) break;
    } else {
      const r = await c.query("SELECT count(*)::int AS n FROM touched_gw");
      if (r.rows[0].n >= jobs) break;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const secs = (Date.now() - started) / 1000;
  console.log(`graphile-worker 0.17, ${mode}, ${processes} process(es): ${jobs} jobs in ${secs.toFixed(2)} s = ${(jobs / secs).toFixed(0)} jobs/s`);
  for (const child of children) child.kill("SIGTERM");
  await Promise.all(children.map((child) => new Promise((resolve) => child.on("exit", resolve))));
  await c.end();
}

if (process.argv[2] === "worker") {
  worker(process.argv[3], process.argv[4]).catch((e) => { console.error(e); process.exit(1); });
} else {
  main().catch((e) => { console.error(e); process.exit(1); });
}
