// npm run torture: the long mode of the kill -9 torture test (200 kills by default).
import { runTorture } from './harness.js';

const given = process.argv[2] ?? process.env.TORTURE_KILLS ?? '200';
const kills = Number(given);
if (!Number.isInteger(kills) || kills < 1) {
  console.error(`usage: npm run torture [-- KILLS] (or TORTURE_KILLS=KILLS): the number of kills, a whole number from 1; got ${JSON.stringify(given)}`);
  process.exit(2);
}
const report = await runTorture({ kills, agents: 6, tasksPerAgent: 8, maxLifeMs: 500, log: (l) => console.error(l) });
console.log(JSON.stringify(report, null, 2));
const clean = report.lost.length + report.inTwoPlaces.length + report.duplicatedEntries.length + report.missingEntries.length + report.unreadableFiles.length + report.modelCallsPaidTwice === 0 && report.auditOk;
console.log(
  `${clean ? 'PASS' : 'FAIL'}: ${report.kills} kills, ${report.tasks} tasks: ${report.done} done, ${report.deadLettered} dead-lettered, ` +
    `${report.lost.length} lost, ${report.inTwoPlaces.length} in two places, ${report.duplicatedEntries.length} duplicated side effects, ` +
    `${report.missingEntries.length} missing side effects, ${report.modelCallsPaidTwice} model calls paid twice, ${report.unreadableFiles.length} unreadable files, audit ${report.auditOk ? 'intact' : 'BROKEN'}`,
);
process.exitCode = clean ? 0 : 1;
