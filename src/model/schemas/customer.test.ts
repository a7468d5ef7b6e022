import { describe, it, expect } from 'vitest';
import { Customer, CustomerResource } from './customer.js';

import { expectRejected, makeAjv, without, type InvalidCase } from '../../../test/support/schemas.js';
import { countPii, piiPaths } from '../pii.js';

const ajv = makeAjv();
const validateCustomer = ajv.compile<Customer>(Customer);
const validateCustomerResource = ajv.compile<CustomerResource>(CustomerResource);

const email = {
  type: 'email',
  value: 'anna.schmidt@example.de',
  verified: true,
  primary: true,
} as const;
const phone = { type: 'phone', value: '+4930123456789', verified: false, primary: true } as const;
const address = {
  type: 'address',
  address: {
    line1: 'Torstraße 1',
    line2: 'Hinterhaus, 3. OG',
    postalCode: '10119',
    city: 'Berlin',
    country: 'DE',
  },
  verified: false,
  primary: true,
} as const;

const valid: Customer = {
  id: 'cus_01HZX3K9QF',
  channelIds: [
    { channel: 'web', externalId: 'shop-4711', marketCode: 'DE' },
    { channel: 'pos', externalId: 'loyalty-0049-1234-5678' },
  ],
  contactPoints: [email, phone, address],
  names: { given: 'Anna', family: 'Schmidt' },
  birthDate: '1988-04-17',
  preferredLocale: 'de-DE',
  marketCode: 'DE',
  consents: [
    {
      purpose: 'marketing-email',
      granted: true,
      at: '2024-03-01T10:15:00Z',
      channel: 'web',
      source: 'checkout-form',
    },
    { purpose: 'terms', granted: true, at: '2024-03-01T10:15:00+01:00', channel: 'web' },
    { purpose: 'profiling', granted: false, at: '2024-03-01T10:15:00Z', channel: 'pos' },
  ],
};

const meta = { version: 3, createdAt: '2024-03-01T10:15:00Z', updatedAt: '2024-06-01T08:00:00Z' };

const invalid: InvalidCase[] = [
  {
    name: 'unknown top-level field',
    data: { ...valid, nickname: 'Anni' },
    instancePath: '',
    keyword: 'additionalProperties',
  },
  {
    name: 'missing consents',
    data: without(valid, 'consents'),
    instancePath: '',
    keyword: 'required',
  },
  {
    name: 'externalId is a number',
    data: { ...valid, channelIds: [{ channel: 'web', externalId: 4711 }] },
    instancePath: '/channelIds/0/externalId',
    keyword: 'type',
  },
  {
    name: 'unknown channel',
    data: { ...valid, channelIds: [{ channel: 'fax', externalId: '1' }] },
    instancePath: '/channelIds/0/channel',
    keyword: 'anyOf',
  },
  {
    name: 'phone not in E.164 form',
    data: { ...valid, contactPoints: [{ ...phone, value: '030 1234567' }] },
    instancePath: '/contactPoints/0/value',
    keyword: 'pattern',
  },
  {
    name: 'phone with leading zero country code',
    data: { ...valid, contactPoints: [{ ...phone, value: '+0301234567' }] },
    instancePath: '/contactPoints/0/value',
    keyword: 'pattern',
  },
  {
    name: 'email that is not an address',
    data: { ...valid, contactPoints: [{ ...email, value: 'anna at example' }] },
    instancePath: '/contactPoints/0/value',
    keyword: 'format',
  },
  {
    name: 'unknown contact point type',
    data: { ...valid, contactPoints: [{ ...email, type: 'fax' }] },
    instancePath: '/contactPoints/0/type',
    keyword: 'const',
  },
  {
    name: 'address contact point without address',
    data: {
      ...valid,
      contactPoints: [{ type: 'address', value: 'Torstr. 1', verified: false, primary: false }],
    },
    instancePath: '/contactPoints/0',
    keyword: 'required',
  },
  {
    name: 'address without city',
    data: { ...valid, contactPoints: [{ ...address, address: without(address.address, 'city') }] },
    instancePath: '/contactPoints/0/address',
    keyword: 'required',
  },
  {
    name: 'contact point without verified flag',
    data: { ...valid, contactPoints: [without(email, 'verified')] },
    instancePath: '/contactPoints/0',
    keyword: 'required',
  },
  {
    name: 'unknown field in names',
    data: { ...valid, names: { given: 'Anna', middle: 'Maria' } },
    instancePath: '/names',
    keyword: 'additionalProperties',
  },
  {
    name: 'birth date that is not a date',
    data: { ...valid, birthDate: '1988-13-45' },
    instancePath: '/birthDate',
    keyword: 'format',
  },
  {
    name: 'unknown consent purpose',
    data: { ...valid, consents: [{ ...valid.consents[0], purpose: 'newsletter' }] },
    instancePath: '/consents/0/purpose',
    keyword: 'anyOf',
  },
  {
    name: 'consent time that is not a timestamp',
    data: { ...valid, consents: [{ ...valid.consents[0], at: 'yesterday' }] },
    instancePath: '/consents/0/at',
    keyword: 'format',
  },
  {
    name: 'granted as a string',
    data: { ...valid, consents: [{ ...valid.consents[0], granted: 'yes' }] },
    instancePath: '/consents/0/granted',
    keyword: 'type',
  },
  {
    name: 'lower-case market code',
    data: { ...valid, marketCode: 'de' },
    instancePath: '/marketCode',
    keyword: 'pattern',
  },
];

describe('Customer schema', () => {
  it('compiles under ajv strict mode and accepts a realistic customer', () => {
    expect(validateCustomer(valid), JSON.stringify(validateCustomer.errors)).toBe(true);
  });

  it('accepts a minimal customer (guest from a POS receipt)', () => {
    const minimal: Customer = {
      id: 'cus_2',
      channelIds: [],
      contactPoints: [],
      names: {},
      consents: [],
    };
    expect(validateCustomer(minimal), JSON.stringify(validateCustomer.errors)).toBe(true);
  });

  it.each(invalid)('rejects $name at "$instancePath" ($keyword)', (c) => expectRejected(validateCustomer, c));

  it('CustomerResource accepts a customer with its meta and needs the meta', () => {
    expect(validateCustomerResource({ ...valid, ...meta })).toBe(true);
    expect(validateCustomerResource(valid)).toBe(false);
    expect(validateCustomerResource.errors).toContainEqual(
      expect.objectContaining({
        instancePath: '',
        keyword: 'required',
        params: { missingProperty: 'version' },
      }),
    );
  });

  it('marks exactly the personal data with x-pii', () => {
    const expected = [
      '/contactPoints/*[type=email]/value email',
      '/contactPoints/*[type=phone]/value phone',
      '/contactPoints/*[type=address]/address address',
      '/names/given name',
      '/names/family name',
      '/birthDate birth-date',
    ].sort();
    expect(piiPaths(Customer).sort()).toEqual(expected);
    expect(countPii(Customer)).toBe(expected.length);
    expect(piiPaths(CustomerResource).sort()).toEqual(expected);
    expect(countPii(CustomerResource)).toBe(expected.length);
  });
});
