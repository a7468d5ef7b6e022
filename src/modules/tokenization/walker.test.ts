import { describe, expect, it } from 'vitest';
import { Customer } from '../../model/schemas/customer.js';
import { mapPersonalData } from './walker.js';

const CUSTOMER = {
  id: 'C-1',
  channelIds: [],
  contactPoints: [
    { type: 'email', value: 'a@example.com', verified: true, primary: true },
    { type: 'phone', value: '+4930123456', verified: true, primary: false },
    {
      type: 'address',
      address: { line1: 'X 1', postalCode: '1', city: 'Y', country: 'DE' },
      verified: true,
      primary: false,
    },
  ],
  names: { given: 'Ann' },
  consents: [],
};

describe('mapPersonalData', () => {
  it('visits each x-pii position once, with its kind and pointer, objects whole', () => {
    const seen: Array<[unknown, string, string]> = [];
    const out = mapPersonalData(Customer, CUSTOMER, {
      pii: (value, kind, pointer) => {
        seen.push([value, kind, pointer]);
        return `<${kind}>`;
      },
    });
    expect(seen).toEqual([
      ['a@example.com', 'email', '/contactPoints/0/value'],
      ['+4930123456', 'phone', '/contactPoints/1/value'],
      [CUSTOMER.contactPoints[2]!.address, 'address', '/contactPoints/2/address'],
      ['Ann', 'name', '/names/given'],
    ]);
    expect(out).toMatchObject({
      id: 'C-1',
      contactPoints: [{ value: '<email>' }, { value: '<phone>' }, { address: '<address>' }],
      names: { given: '<name>' },
    });
    expect(CUSTOMER.names.given).toBe('Ann'); // the input is not changed
  });

  it('hands what the schema does not describe to `unknown` when asked', () => {
    const unknown: string[] = [];
    mapPersonalData(
      Customer,
      { ...CUSTOMER, note: 'x', contactPoints: [{ type: 'fax', value: '1' }] },
      { pii: (v) => v, unknown: (v, pointer) => (unknown.push(pointer), v) },
    );
    expect(unknown.sort()).toEqual(['/contactPoints/0', '/note']);
  });
});
