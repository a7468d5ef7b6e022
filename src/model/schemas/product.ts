import { Type, type Static } from '@sinclair/typebox';
import { Attributes, Identifier, LocalizedText, Money, resourceOf, schemaId } from './common.js';

export const Gtin = Type.String({
  pattern: '^([0-9]{8}|[0-9]{12,14})$',
  format: 'gtin',
  description: 'GTIN-8, -12, -13 or -14 with a valid check digit',
});

/** A sellable variant of a product: the unit that stock is kept for. */
export const Sku = Type.Object(
  {
    sku: Identifier('Stock keeping unit code, unique across the catalog'),
    gtin: Type.Optional(Gtin),
    name: Type.Optional(LocalizedText),
    attributes: Type.Optional(Attributes),
    prices: Type.Optional(
      Type.Array(
        Type.Object(
          { marketCode: Type.String({ pattern: '^[A-Z]{2}(-[A-Z0-9]{1,8})?$' }), price: Money },
          { additionalProperties: false },
        ),
        { maxItems: 100, description: 'List price per market' },
      ),
    ),
    status: Type.Union([Type.Literal('active'), Type.Literal('discontinued')], {
      default: 'active',
    }),
  },
  { additionalProperties: false },
);
export type Sku = Static<typeof Sku>;

/** A product (style) with its SKUs (variants). */
export const Product = Type.Object(
  {
    id: Identifier('Product id chosen by the retailer'),
    name: LocalizedText,
    description: Type.Optional(LocalizedText),
    brand: Type.Optional(Type.String({ maxLength: 200 })),
    category: Type.Optional(
      Type.String({ maxLength: 200, description: 'Path, e.g. shoes/running' }),
    ),
    attributes: Type.Optional(Attributes),
    skus: Type.Array(Sku, { minItems: 1, maxItems: 500 }),
    status: Type.Union([Type.Literal('active'), Type.Literal('archived')], { default: 'active' }),
  },
  { $id: schemaId('product', 1), title: 'Product', additionalProperties: false },
);
export type Product = Static<typeof Product>;

export const ProductResource = resourceOf(Product, 'product', 'Product');
export type ProductResource = Static<typeof ProductResource>;
