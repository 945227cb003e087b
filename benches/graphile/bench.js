// Graphile Worker 0.17 on the same job as orderly's queue bench: each job
// writes one row; 4 concurrent jobs; local queue and batched completion on.
const { run, runMigrations } = require("graphile-worker");
const { Client } = require("pg");

async function main() {
  const [connectionString, jobsArg] = process.argv.slice(2);
  const jobs = Number(jobsArg || 5000);
  const c = new Client({ connectionString });
  await c.connect();
  await runMigrations({ connectionString });
  await c.query("CREATE TABLE IF NOT EXISTS touched_gw (id BIGINT PRIMARY KEY)");
  await c.query("TRUNCATE touched_gw; DELETE FROM graphile_worker._private_jobs");
  await c.query("SELECT graphile_worker.add_job('touch', json_build_object('id', i)) FROM generate_series(1, $1::int) i", [jobs]);
  const started = Date.now();
  const runner = await run({
    connectionString,
    concurrency: 4,
    noHandleSignals: true,
    pollInterval: 5,
    preset: { worker: { localQueue: { size: 8 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 } },
    taskList: {
      touch: async (payload, helpers) => {
        await helpers.query("INSERT INTO touched_gw (id) VALUES ($1)", [payload.id]);
      },
    },
  });
  for (;;) {
    const r = await c.query("SELECT count(*)::int AS n FROM touched_gw");
    if (r.rows[0].n >= jobs) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const secs = (Date.now() - started) / 1000;
  console.log(`graphile-worker 0.17.3, 1 process: ${jobs} jobs in ${secs.toFixed(2)} s = ${(jobs / secs).toFixed(0)} jobs/s`);
  await runner.stop();
  await c.end();
}
main().catch((e) => { console.error(e); process.exit(1); });
