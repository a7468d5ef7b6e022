import { Type, type Static } from '@sinclair/typebox';
import {
  Channel,
  Identifier,
  Locale,
  MarketCode,
  resourceOf,
  Timestamp,
  pii,
  postalAddress,
  schemaId,
} from './common.js';

export const CONSENT_PURPOSES = ['marketing-email', 'marketing-sms', 'profiling', 'terms'] as const;

/** A postal address of a person: personal data, tokenized at the edge as one value. */
export const PersonalAddress = pii(postalAddress('Postal address of a person'), 'address');
export type PersonalAddress = Static<typeof PersonalAddress>;

/** The id of the same person in one channel's own system (web shop account, loyalty card, ...). */
export const ChannelIdentity = Type.Object(
  {
    channel: Channel,
    externalId: Type.String({ minLength: 1, maxLength: 200, description: 'Id in that channel' }),
    marketCode: Type.Optional(MarketCode),
  },
  { additionalProperties: false },
);
export type ChannelIdentity = Static<typeof ChannelIdentity>;

const contactPointFlags = {
  verified: Type.Boolean({ description: 'Whether the customer has proven control of it' }),
  primary: Type.Boolean({ description: 'Preferred contact point of its type' }),
};

/** An e-mail address of a customer. */
export const EmailContactPoint = Type.Object(
  {
    type: Type.Literal('email'),
    value: pii(Type.String({ format: 'email', maxLength: 254 }), 'email'),
    ...contactPointFlags,
  },
  { additionalProperties: false },
);

/** A phone number of a customer, in E.164 form. */
export const PhoneContactPoint = Type.Object(
  {
    type: Type.Literal('phone'),
    value: pii(
      Type.String({ pattern: '^\\+[1-9][0-9]{6,14}$', description: 'E.164: +4930123456' }),
      'phone',
    ),
    ...contactPointFlags,
  },
  { additionalProperties: false },
);

/** A postal address of a customer. */
export const AddressContactPoint = Type.Object(
  {
    type: Type.Literal('address'),
    address: PersonalAddress,
    ...contactPointFlags,
  },
  { additionalProperties: false },
);

/** A way to reach a customer, discriminated by `type`. */
export const ContactPoint = Type.Union(
  [EmailContactPoint, PhoneContactPoint, AddressContactPoint],
  {
    description: 'Discriminated by type',
  },
);
export type ContactPoint = Static<typeof ContactPoint>;

/** A consent given or withdrawn by a customer, with when and through which channel. */
export const Consent = Type.Object(
  {
    purpose: Type.Union(CONSENT_PURPOSES.map((p) => Type.Literal(p))),
    granted: Type.Boolean({ description: 'false records a withdrawal or refusal' }),
    at: Timestamp,
    channel: Channel,
    source: Type.Optional(
      Type.String({ maxLength: 200, description: 'Where it was captured, e.g. checkout-form' }),
    ),
  },
  { additionalProperties: false },
);
export type Consent = Static<typeof Consent>;

/** A customer: one person across channels, with contact points, names and consents. */
export const Customer = Type.Object(
  {
    id: Identifier('Customer id, one per person across channels'),
    channelIds: Type.Array(ChannelIdentity, {
      maxItems: 100,
      description: 'Ids of the same person per channel',
    }),
    contactPoints: Type.Array(ContactPoint, { maxItems: 50 }),
    names: Type.Object(
      {
        given: Type.Optional(pii(Type.String({ minLength: 1, maxLength: 200 }), 'name')),
        family: Type.Optional(pii(Type.String({ minLength: 1, maxLength: 200 }), 'name')),
      },
      { additionalProperties: false },
    ),
    birthDate: Type.Optional(pii(Type.String({ format: 'date' }), 'birth-date')),
    preferredLocale: Type.Optional(Locale),
    marketCode: Type.Optional(MarketCode),
    consents: Type.Array(Consent, { maxItems: 100 }),
  },
  { $id: schemaId('customer', 1), title: 'Customer', additionalProperties: false },
);
export type Customer = Static<typeof Customer>;

/** A stored customer with its server-maintained fields. */
export const CustomerResource = resourceOf(Customer, 'customer', 'Customer');
export type CustomerResource = Static<typeof CustomerResource>;
