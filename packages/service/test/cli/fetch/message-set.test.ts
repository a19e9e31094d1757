/** --messages: numbers and ranges, checked before connecting and again against the mailbox. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidArgumentError } from 'commander';
import { UsageError } from '../../../src/cli/failure.ts';
import { parseMessageSet, selectMessages } from '../../../src/cli/fetch/message-set.ts';

const mailbox = (count: number) => Array.from({ length: count }, (_, index) => ({ n: index + 1, size: 100 * (index + 1) }));

describe('parseMessageSet', () => {
  it('takes numbers and inclusive ranges, separated by commas, spaces allowed around them', () => {
    assert.deepEqual(parseMessageSet('1,5-9'), [
      { first: 1, last: 1 },
      { first: 5, last: 9 },
    ]);
    assert.deepEqual(parseMessageSet(' 3 , 4-4 '), [
      { first: 3, last: 3 },
      { first: 4, last: 4 },
    ]);
    assert.deepEqual(parseMessageSet('1-999999999999999'), [{ first: 1, last: 999999999999999 }]);
  });

  for (const garbage of ['', ',', '1,', ',1', '1,,2', 'a', '1-', '-3', '1--2', '1-2-3', '0', '0-4', '9-5', '1.5', '1e3', '0x10', '+1', '1 2', '1;2', '1000000000000000']) {
    it(`refuses ${JSON.stringify(garbage)}`, () => {
      assert.throws(() => parseMessageSet(garbage), InvalidArgumentError);
    });
  }
});

describe('selectMessages', () => {
  it('without --messages, selects every listed message', () => {
    assert.deepEqual(selectMessages(mailbox(3), undefined), mailbox(3));
  });

  it('selects in the server order, each message once, however the ranges overlap', () => {
    const selected = selectMessages(mailbox(10), parseMessageSet('9,1-3,2,8-9'));
    assert.deepEqual(
      selected.map(({ n }) => n),
      [1, 2, 3, 8, 9],
    );
    assert.equal(selected[0]?.size, 100);
  });

  it('a number the mailbox does not have is a usage error naming it and what the mailbox has', () => {
    assert.throws(() => selectMessages(mailbox(6), parseMessageSet('1,5-9')), (error: unknown) => {
      assert.ok(error instanceof UsageError);
      assert.equal(error.message, '--messages asks for message 7, but the mailbox has messages 1-6');
      return true;
    });
    assert.throws(() => selectMessages(mailbox(0), parseMessageSet('1')), /the mailbox is empty/);
    assert.throws(() => selectMessages(mailbox(1), parseMessageSet('2')), /has message 1 only/);
  });

  it('a huge range on a small mailbox is refused without walking the range', () => {
    assert.throws(() => selectMessages(mailbox(5), parseMessageSet('1-999999999999999')), /message 6/);
  });
});
