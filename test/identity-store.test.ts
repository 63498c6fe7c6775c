/**
 * The identity store under signed requests: nonces recorded in batches (group commit) and keys
 * looked up with their policy, on both dialects. Through the API these are covered end to end in
 * alibaba-door and native-door; here the batching and caching edges are driven directly.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, it } from 'node:test';
import { systemClock } from '../src/core/clock.ts';
import { isAppError } from '../src/core/errors.ts';
import { KeyDirectory, createAccessKey, setAccessKeyStatus } from '../src/identity/access-keys.ts';
import { ensureAccount } from '../src/identity/accounts.ts';
import { NonceLedger } from '../src/identity/nonces.ts';
import { attachPolicy, detachPolicy } from '../src/identity/policies.ts';
import { SecretBox } from '../src/identity/secret-box.ts';
import { type Database, openDatabase } from '../src/store/database.ts';
import { forEachDialect } from './support/dialects.ts';

const nonceUsed = (err: unknown): boolean => isAppError(err) && err.code === 'SignatureNonceUsed';

forEachDialect('identity store', (ctx) => {
  let database: Database;
  let accountId: string;
  const box = new SecretBox(randomBytes(32));

  before(async () => {
    database = await ctx.open();
    accountId = (await ensureAccount(database.db, systemClock, 'alice')).id;
  });

  it('records nonces asked for together in one batch, refusing a repeat inside the batch and across batches', async () => {
    const ledger = new NonceLedger(database.db, systemClock);
    const fresh = Array.from({ length: 700 }, (_, i) => `n-${i}`);
    // 700 at once: more than one INSERT statement's worth, plus the same nonce twice in the batch.
    const answers = await Promise.allSettled([...fresh.map((n) => ledger.remember('LTAIbatch', n)), ledger.remember('LTAIbatch', 'n-3')]);
    assert.equal(answers.filter((a) => a.status === 'fulfilled').length, 700);
    const refused = answers.filter((a) => a.status === 'rejected');
    assert.equal(refused.length, 1);
    assert.ok(nonceUsed(refused[0]?.status === 'rejected' ? refused[0].reason : undefined));
    // A later batch: the replay is refused, a new nonce and the same nonce of another key are not.
    const later = await Promise.allSettled([ledger.remember('LTAIbatch', 'n-699'), ledger.remember('LTAIbatch', 'n-700'), ledger.remember('LTAIother', 'n-0')]);
    assert.deepEqual(
      later.map((a) => a.status),
      ['rejected', 'fulfilled', 'fulfilled'],
    );
    // A second node (its own ledger, same database) sees the first one's nonces.
    await assert.rejects(new NonceLedger(database.db, systemClock).remember('LTAIbatch', 'n-5'), nonceUsed);
    const stored = await database.db.selectFrom('signature_nonces').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    assert.equal(Number(stored.n), 702);
  });

  it('looks a key up with its policy, and sees a disabled key or a changed policy on the next call', async () => {
    const created = await createAccessKey(database.db, box, systemClock, accountId);
    const directory = new KeyDirectory(database.db, box);
    const first = await directory.find(created.id);
    assert.equal(first.key.secret, created.secret);
    assert.equal(first.key.accountId, accountId);
    assert.equal(first.key.status, 'Active');
    assert.equal(first.policy, undefined);

    // Changes made elsewhere (another node, the admin CLI) count on the very next lookup.
    const policy = { Version: '1', Statement: [{ Effect: 'Deny' as const, Action: ['smc:*'], Resource: ['*'] }] };
    await attachPolicy(database.db, systemClock, created.id, policy);
    await setAccessKeyStatus(database.db, created.id, 'Inactive');
    const second = await directory.find(created.id);
    assert.equal(second.key.status, 'Inactive');
    assert.deepEqual(second.policy, policy);
    assert.equal(second.key.secret, created.secret);

    await detachPolicy(database.db, created.id);
    assert.equal((await directory.find(created.id)).policy, undefined);
    await assert.rejects(directory.find('LTAInotthere'), (err: unknown) => isAppError(err) && err.code === 'InvalidAccessKeyIdNotFound');
  });

  it('answers lookups asked together, each with its own key, and sees what another node changed on the next lookup', async () => {
    // Two handles on one database, as two nodes (or a node and the admin CLI) have.
    const url = await ctx.newDatabaseUrl();
    const nodeA = await openDatabase({ url, poolSize: 4 });
    const nodeB = await openDatabase({ url, poolSize: 4 });
    after(async () => {
      await nodeA.close();
      await nodeB.close();
    });
    const account = (await ensureAccount(nodeA.db, systemClock, 'bob')).id;
    const keys = await Promise.all([1, 2, 3].map(() => createAccessKey(nodeA.db, box, systemClock, account)));
    const directory = new KeyDirectory(nodeA.db, box);
    const notFound = (err: unknown): boolean => isAppError(err) && err.code === 'InvalidAccessKeyIdNotFound';
    const together = await Promise.allSettled([...keys.map((k) => directory.find(k.id)), directory.find(keys[0]?.id ?? ''), directory.find('LTAInotthere')]);
    assert.deepEqual(
      together.map((a) => (a.status === 'fulfilled' ? [a.value.key.id, a.value.key.secret, a.value.key.status] : notFound(a.reason))),
      [...keys.map((k) => [k.id, k.secret, 'Active']), [keys[0]?.id, keys[0]?.secret, 'Active'], true],
    );

    const deny = { Version: '1', Statement: [{ Effect: 'Deny' as const, Action: ['smc:*'], Resource: ['*'] }] };
    await setAccessKeyStatus(nodeB.db, keys[0]?.id ?? '', 'Inactive');
    await attachPolicy(nodeB.db, systemClock, keys[1]?.id ?? '', deny);
    const [disabled, denied, untouched] = await Promise.all(keys.map((k) => directory.find(k.id)));
    assert.equal(disabled?.key.status, 'Inactive', 'a key disabled through another handle is disabled on the next lookup');
    assert.deepEqual(denied?.policy, deny, 'a policy attached through another handle holds on the next lookup');
    assert.deepEqual([untouched?.key.status, untouched?.policy], ['Active', undefined]);
    await detachPolicy(nodeB.db, keys[1]?.id ?? '');
    await setAccessKeyStatus(nodeB.db, keys[0]?.id ?? '', 'Active');
    const [enabled, released] = await Promise.all([directory.find(keys[0]?.id ?? ''), directory.find(keys[1]?.id ?? '')]);
    assert.deepEqual([enabled.key.status, released.policy], ['Active', undefined]);
  });
});
