import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { migrate } from '../../src/store/migrate.ts';
import type { Sql } from '../../src/store/sql.ts';
import type { Store } from '../../src/store/store.ts';
import { AuditWriter } from '../../src/audit/writer.ts';
import { CapturedLogs, createTestDatabase, openTestStore, type TestDatabase } from '../support/harness.ts';
import { TestClock } from '../support/clock.ts';

let db: TestDatabase;
let store: Store;

before(async () => {
  db = await createTestDatabase();
  store = await openTestStore(db);
  await migrate(store.sql);
});
after(async () => {
  await store?.close();
  await db?.drop();
});

async function rows(subjectPrefix: string) {
  return store.prisma.auditEvent.findMany({ where: { subject: { startsWith: subjectPrefix } }, orderBy: { id: 'asc' } });
}

/** The real store, with one fault injected in front of it (what a store refusing one event or a lost connection looks like). */
function faulty(refuse: (params: unknown[]) => Error | undefined): Sql {
  return {
    ...store.sql,
    query: async <T extends object>(text: string, params?: unknown[]) => {
      const error = refuse(params ?? []);
      if (error) throw error;
      return store.sql.query<T>(text, params);
    },
  };
}

const dataError = () => Object.assign(new Error('invalid byte sequence for encoding "UTF8": 0x00'), { code: '22021' });
const connectionError = () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });

test('issue 11 §5: a NUL byte in any field cannot stop the trail; it is stored as U+FFFD', async () => {
  const logs = new CapturedLogs();
  const writer = new AuditWriter(store.sql, logs.logger, () => new Date());
  writer.record({ type: 'token.issued', outcome: 'failure', actor: 'evil\0client', subject: 'nul-1', ip: '127.0.0.1', details: { grant_type: 'client_credentials\0', nested: { list: ['a\0'] } } });
  writer.record({ type: 'token.issued', outcome: 'success', subject: 'nul-2', details: { lone: '\uD800' } });
  await writer.flush();
  const written = await rows('nul-');
  assert.equal(written.length, 2);
  assert.equal(written[0]!.actor, 'evil\uFFFDclient');
  assert.deepEqual(written[0]!.details, { grant_type: 'client_credentials\uFFFD', nested: { list: ['a\uFFFD'] } });
  assert.deepEqual(written[1]!.details, { lone: '\uFFFD' });
  assert.equal(writer.stats().buffered, 0);
});

test('issue 11 §6: audited values are bounded (55,000 characters are not kept)', async () => {
  const writer = new AuditWriter(store.sql, new CapturedLogs().logger, () => new Date());
  writer.record({ type: 'token.issued', outcome: 'failure', actor: 'x'.repeat(55_000), subject: 'long-1', details: { grant_type: 'y'.repeat(55_000) } });
  await writer.flush();
  const [row] = await rows('long-1');
  assert.ok(row!.actor!.length <= 129);
  assert.ok((row!.details as { grant_type: string }).grant_type.length <= 257);
});

test('issue 11 §5: a batch the store refuses for one event is split; the rest is written, the bad one without details, then dropped and counted', async () => {
  const logs = new CapturedLogs();
  // Refuses any batch holding the subject "split-bad" (as PostgreSQL refuses a whole multi-row INSERT).
  const writer = new AuditWriter(faulty((params) => ((params[2] as string[]).includes('split-bad') ? dataError() : undefined)), logs.logger, () => new Date(), { batchSize: 50 });
  for (let i = 0; i < 20; i += 1) writer.record({ type: 'admin.change', outcome: 'success', subject: i === 7 ? 'split-bad' : `split-${i}` });
  await writer.flush();
  assert.equal((await rows('split-')).length, 19, 'every other event of the batch is written');
  assert.deepEqual(writer.stats(), { buffered: 0, dropped: { overflow: 0, unstorable: 1 } });
  writer.record({ type: 'admin.change', outcome: 'success', subject: 'split-after' });
  await writer.flush();
  assert.equal((await rows('split-after')).length, 1, 'later events are written');
  assert.equal(logs.lines.filter((l) => l.includes('dropped')).length, 1);
});

test('issue 11 §5: an event refused only for its details is written without them', async () => {
  const writer = new AuditWriter(faulty((params) => ((params[5] as string[]).some((d) => d.includes('refused-detail')) ? dataError() : undefined)), new CapturedLogs().logger, () => new Date());
  writer.record({ type: 'admin.change', outcome: 'success', subject: 'detail-ok' });
  writer.record({ type: 'admin.change', outcome: 'success', subject: 'detail-bad', details: { x: 'refused-detail' } });
  await writer.flush();
  const written = await rows('detail-');
  assert.deepEqual(written.map((r) => r.subject), ['detail-ok', 'detail-bad']);
  assert.deepEqual(written[1]!.details, { unstorable: true, error_code: '22021' });
});

test('a lost connection is not a bad event: the batch is kept whole and written once the store answers', async () => {
  let down = true;
  const writer = new AuditWriter(faulty(() => (down ? connectionError() : undefined)), new CapturedLogs().logger, () => new Date());
  for (let i = 0; i < 5; i += 1) writer.record({ type: 'admin.change', outcome: 'success', subject: `outage-${i}` });
  await writer.flush();
  assert.equal(writer.stats().buffered, 5);
  down = false;
  await writer.flush();
  assert.equal((await rows('outage-')).length, 5);
  assert.deepEqual(writer.stats(), { buffered: 0, dropped: { overflow: 0, unstorable: 0 } });
});

test('issue 11 §6: the buffer is capped; the oldest are dropped, counted, and logged once per episode', async () => {
  const logs = new CapturedLogs();
  let down = true;
  const writer = new AuditWriter(faulty(() => (down ? connectionError() : undefined)), logs.logger, () => new Date(), { maxBuffered: 100, batchSize: 1_000 });
  for (let i = 0; i < 250; i += 1) writer.record({ type: 'admin.change', outcome: 'success', subject: `cap-${String(i).padStart(3, '0')}` });
  await writer.flush();
  assert.deepEqual(writer.stats(), { buffered: 100, dropped: { overflow: 150, unstorable: 0 } });
  assert.equal(logs.lines.filter((l) => l.includes('audit buffer full')).length, 1, 'one error line per episode');
  down = false;
  await writer.flush();
  const written = await rows('cap-');
  assert.equal(written.length, 100);
  assert.equal(written[0]!.subject, 'cap-150', 'the newest are kept');
  assert.equal(logs.lines.filter((l) => l.includes('audit buffer drained')).length, 1);
});

test('issue 11 §6: repeats of one unauthenticated failure within a minute become one summary with a count', async () => {
  const clock = new TestClock(new Date('2026-01-01T00:00:00Z'));
  const writer = new AuditWriter(store.sql, new CapturedLogs().logger, clock.now);
  const seen: string[] = [];
  writer.observe((event) => seen.push(event.type));
  const event = { type: 'token.issued' as const, outcome: 'failure' as const, actor: 'repeat-client', subject: 'repeat-a', ip: '192.0.2.1', details: { error: 'invalid_client' } };
  for (let i = 0; i < 500; i += 1) writer.recordRepeatable(event, 'repeat-client|192.0.2.1');
  writer.recordRepeatable({ ...event, subject: 'repeat-b', ip: '192.0.2.2' }, 'repeat-client|192.0.2.2');
  await writer.flush();
  assert.equal((await rows('repeat-a')).length, 1, 'the first occurrence is written at once');
  clock.advance(60_001);
  await writer.flush();
  const a = await rows('repeat-a');
  assert.equal(a.length, 2);
  assert.equal((a[1]!.details as { repeats: number }).repeats, 499);
  assert.equal((await rows('repeat-b')).length, 1, 'a source without repeats writes no summary');
  assert.equal(seen.length, 501, 'metrics see every occurrence');
});

test('issue 11 §6: too many distinct repeating sources summarize the least recent early (bounded memory, no count lost)', async () => {
  const clock = new TestClock(new Date('2026-01-01T00:00:00Z'));
  const writer = new AuditWriter(store.sql, new CapturedLogs().logger, clock.now, { maxRepeatKeys: 10 });
  for (let source = 0; source < 30; source += 1) {
    for (let i = 0; i < 3; i += 1) writer.recordRepeatable({ type: 'token.issued', outcome: 'failure', subject: `spread-${source}` }, `k${source}`);
  }
  await writer.stop();
  const written = await rows('spread-');
  assert.equal(written.length, 60, 'a first row and a summary per source');
  // A first row stands for one occurrence, a summary for its repeats.
  const total = written.reduce((n, r) => n + ((r.details as { repeats?: number }).repeats ?? 1), 0);
  assert.equal(total, 90, 'every occurrence is accounted for');
});

test('issue 13 §1: audit events are log lines only at debug, or at info when asked for (KEYWARD_AUDIT_LOG=info)', async () => {
  const atInfo = new CapturedLogs('info');
  const quiet = new AuditWriter(store.sql, atInfo.logger, () => new Date());
  quiet.record({ type: 'token.issued', outcome: 'success', actor: 'svc', subject: 'log-level-1' });
  await quiet.stop();
  assert.equal(atInfo.lines.filter((l) => l.includes('token.issued')).length, 0, 'no line at LOG_LEVEL=info by default');
  assert.equal((await rows('log-level-1')).length, 1, 'the trail is written all the same');

  const atDebug = new CapturedLogs('debug');
  const debug = new AuditWriter(store.sql, atDebug.logger, () => new Date());
  debug.record({ type: 'token.issued', outcome: 'success', actor: 'svc', subject: 'log-level-2' });
  await debug.stop();
  const line = JSON.parse(atDebug.lines.find((l) => l.includes('token.issued'))!) as Record<string, unknown>;
  assert.equal(line['log.level'], 'debug');

  const asked = new CapturedLogs('info');
  const loud = new AuditWriter(store.sql, asked.logger, () => new Date(), { logLevel: 'info' });
  loud.record({ type: 'token.issued', outcome: 'success', actor: 'svc', subject: 'log-level-3' });
  await loud.stop();
  assert.equal(asked.lines.filter((l) => l.includes('token.issued')).length, 1);
});

test('audit log lines use Elastic Common Schema field names', async () => {
  const logs = new CapturedLogs();
  const writer = new AuditWriter(store.sql, logs.logger, () => new Date('2026-02-03T04:05:06Z'), { logLevel: 'info' });
  writer.record({ type: 'login.failure', outcome: 'failure', actor: 'alice', subject: 'ecs', ip: '198.51.100.7', details: { reason: 'invalid_credentials' } });
  const line = JSON.parse(logs.lines.find((l) => l.includes('login.failure'))!) as Record<string, unknown> & { event: Record<string, unknown> };
  assert.equal(typeof line['@timestamp'], 'string');
  assert.equal(line['log.level'], 'info');
  assert.equal(line.message, 'audit login.failure');
  assert.deepEqual(line.service, { name: 'keyward' });
  assert.equal(line.event.action, 'login.failure');
  assert.equal(line.event.outcome, 'failure');
  assert.deepEqual(line.event.category, ['authentication']);
  assert.deepEqual(line.user, { id: 'alice' });
  assert.deepEqual(line.client, { ip: '198.51.100.7' });
  await writer.stop();
});
