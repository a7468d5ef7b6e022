import type { Channel } from '../model/schemas/common.js';
import type { Location } from '../model/schemas/location.js';
import type { Market } from '../model/schemas/market.js';
import type { Product, Sku } from '../model/schemas/product.js';

/**
 * Demo data for "Stride & Summit", a fictional fashion & sports retailer selling in Germany,
 * Sweden and the United Kingdom. Pure and deterministic: the same options give the same
 * output (a seeded PRNG, no clock, no I/O).
 */

export const RETAILER_NAME = 'Stride & Summit';
export const DEFAULT_SKU_TARGET = 2000;
export const DEFAULT_SEED = 42;

// ---------------------------------------------------------------------------------------------
// Data tables
// ---------------------------------------------------------------------------------------------

type MarketCode = 'DE' | 'SE' | 'GB';
type Lang = 'de-DE' | 'sv-SE' | 'en-GB';
type Words = Record<Lang, string>;

const CORE_CHANNELS: Channel[] = ['web', 'app', 'pos', 'customer-service'];

export const DEMO_MARKETS: readonly Market[] = [
  {
    code: 'DE',
    name: 'Germany',
    country: 'DE',
    currency: 'EUR',
    defaultLocale: 'de-DE',
    locales: ['de-DE', 'en-GB'],
    timeZone: 'Europe/Berlin',
    channels: [...CORE_CHANNELS, 'marketplace'],
    status: 'active',
  },
  {
    code: 'SE',
    name: 'Sweden',
    country: 'SE',
    currency: 'SEK',
    defaultLocale: 'sv-SE',
    locales: ['sv-SE', 'en-GB'],
    timeZone: 'Europe/Stockholm',
    channels: [...CORE_CHANNELS],
    status: 'active',
  },
  {
    code: 'GB',
    name: 'United Kingdom',
    country: 'GB',
    currency: 'GBP',
    defaultLocale: 'en-GB',
    locales: ['en-GB'],
    timeZone: 'Europe/London',
    channels: [...CORE_CHANNELS],
    status: 'active',
  },
];

/** ISO 4217 minor units of the demo currencies. */
export const CURRENCY_DECIMALS: Readonly<Record<string, number>> = { EUR: 2, SEK: 2, GBP: 2 };

type OpeningHours = NonNullable<Location['openingHours']>;

interface MarketProfile {
  timeZone: string;
  /** Regular opening hours; a day that is not listed is closed. */
  hours: OpeningHours;
  /** How a street address is written: "Kurfürstendamm 21" or "21 Oxford Street". */
  numberFirst: boolean;
}

const MON_SAT = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
const monToSat = (opens: string, closes: string): OpeningHours =>
  MON_SAT.map((day) => ({ day, opens, closes }));

const MARKET_PROFILES: Record<MarketCode, MarketProfile> = {
  DE: { timeZone: 'Europe/Berlin', hours: monToSat('09:00', '20:00'), numberFirst: false },
  SE: {
    timeZone: 'Europe/Stockholm',
    hours: [...monToSat('10:00', '19:00'), { day: 'sun', opens: '11:00', closes: '17:00' }],
    numberFirst: false,
  },
  GB: {
    timeZone: 'Europe/London',
    hours: [...monToSat('09:00', '18:00'), { day: 'sun', opens: '11:00', closes: '17:00' }],
    numberFirst: true,
  },
};

interface City {
  market: MarketCode;
  code: string;
  name: string;
  region: string;
  /** City-centre coordinates (WGS 84). */
  lat: number;
  lon: number;
  /** Big cities offer same-day delivery from their stores. */
  big: boolean;
  /** One store per entry: a shopping street and its postal code. */
  streets: [street: string, postalCode: string][];
}

// prettier-ignore
const CITIES: readonly City[] = [
  // Germany: 26 stores
  { market: 'DE', code: 'BER', name: 'Berlin', region: 'Berlin', lat: 52.52, lon: 13.405, big: true,
    streets: [['Kurfürstendamm', '10719'], ['Friedrichstraße', '10117'], ['Alexanderplatz', '10178'], ['Schloßstraße', '12163']] },
  { market: 'DE', code: 'HAM', name: 'Hamburg', region: 'Hamburg', lat: 53.5511, lon: 9.9937, big: true,
    streets: [['Mönckebergstraße', '20095'], ['Jungfernstieg', '20354'], ['Ottenser Hauptstraße', '22765']] },
  { market: 'DE', code: 'MUC', name: 'München', region: 'Bayern', lat: 48.1351, lon: 11.582, big: true,
    streets: [['Kaufingerstraße', '80331'], ['Leopoldstraße', '80802'], ['Sendlinger Straße', '80331']] },
  { market: 'DE', code: 'CGN', name: 'Köln', region: 'Nordrhein-Westfalen', lat: 50.9375, lon: 6.9603, big: false,
    streets: [['Schildergasse', '50667'], ['Hohe Straße', '50667']] },
  { market: 'DE', code: 'FRA', name: 'Frankfurt am Main', region: 'Hessen', lat: 50.1109, lon: 8.6821, big: false,
    streets: [['Zeil', '60313'], ['Goethestraße', '60313']] },
  { market: 'DE', code: 'STR', name: 'Stuttgart', region: 'Baden-Württemberg', lat: 48.7758, lon: 9.1829, big: false,
    streets: [['Königstraße', '70173'], ['Calwer Straße', '70173']] },
  { market: 'DE', code: 'DUS', name: 'Düsseldorf', region: 'Nordrhein-Westfalen', lat: 51.2277, lon: 6.7735, big: false,
    streets: [['Königsallee', '40212'], ['Schadowstraße', '40212']] },
  { market: 'DE', code: 'LEJ', name: 'Leipzig', region: 'Sachsen', lat: 51.3397, lon: 12.3731, big: false,
    streets: [['Grimmaische Straße', '04109'], ['Petersstraße', '04109']] },
  { market: 'DE', code: 'DRS', name: 'Dresden', region: 'Sachsen', lat: 51.0504, lon: 13.7373, big: false,
    streets: [['Prager Straße', '01069'], ['Altmarkt', '01067']] },
  { market: 'DE', code: 'HAJ', name: 'Hannover', region: 'Niedersachsen', lat: 52.3759, lon: 9.732, big: false,
    streets: [['Georgstraße', '30159'], ['Bahnhofstraße', '30159']] },
  { market: 'DE', code: 'NUE', name: 'Nürnberg', region: 'Bayern', lat: 49.4521, lon: 11.0767, big: false,
    streets: [['Breite Gasse', '90402']] },
  { market: 'DE', code: 'BRE', name: 'Bremen', region: 'Bremen', lat: 53.0793, lon: 8.8017, big: false,
    streets: [['Obernstraße', '28195']] },
  // Sweden: 14 stores
  { market: 'SE', code: 'STO', name: 'Stockholm', region: 'Stockholms län', lat: 59.3293, lon: 18.0686, big: true,
    streets: [['Drottninggatan', '111 51'], ['Biblioteksgatan', '111 46'], ['Götgatan', '118 46'], ['Hamngatan', '111 47']] },
  { market: 'SE', code: 'GOT', name: 'Göteborg', region: 'Västra Götalands län', lat: 57.7089, lon: 11.9746, big: true,
    streets: [['Kungsgatan', '411 19'], ['Kungsportsavenyen', '411 36'], ['Nordstadstorget', '411 05']] },
  { market: 'SE', code: 'MMA', name: 'Malmö', region: 'Skåne län', lat: 55.605, lon: 13.0038, big: false,
    streets: [['Södergatan', '211 34'], ['Södra Förstadsgatan', '211 43']] },
  { market: 'SE', code: 'UPP', name: 'Uppsala', region: 'Uppsala län', lat: 59.8586, lon: 17.6389, big: false,
    streets: [['Kungsgatan', '753 21'], ['Svartbäcksgatan', '753 20']] },
  { market: 'SE', code: 'VST', name: 'Västerås', region: 'Västmanlands län', lat: 59.6099, lon: 16.5448, big: false,
    streets: [['Stora Gatan', '722 12']] },
  { market: 'SE', code: 'ORB', name: 'Örebro', region: 'Örebro län', lat: 59.2753, lon: 15.2134, big: false,
    streets: [['Drottninggatan', '702 10']] },
  { market: 'SE', code: 'LPI', name: 'Linköping', region: 'Östergötlands län', lat: 58.4108, lon: 15.6214, big: false,
    streets: [['Ågatan', '582 22']] },
  // United Kingdom: 20 stores
  { market: 'GB', code: 'LON', name: 'London', region: 'England', lat: 51.5074, lon: -0.1278, big: true,
    streets: [['Oxford Street', 'W1C 2JS'], ['Regent Street', 'W1B 4DA'], ['Long Acre', 'WC2E 9LG'], ["King's Road", 'SW3 4RP'], ['Upper Street', 'N1 0PN'], ['Ariel Way', 'W12 7GF']] },
  { market: 'GB', code: 'MAN', name: 'Manchester', region: 'England', lat: 53.4808, lon: -2.2426, big: true,
    streets: [['Market Street', 'M1 1PT'], ['Deansgate', 'M3 2EN'], ['King Street', 'M2 4LQ']] },
  { market: 'GB', code: 'BHM', name: 'Birmingham', region: 'England', lat: 52.4862, lon: -1.8904, big: true,
    streets: [['New Street', 'B2 4RQ'], ['Bull Street', 'B4 6AF'], ['Corporation Street', 'B2 4LP']] },
  { market: 'GB', code: 'LDS', name: 'Leeds', region: 'England', lat: 53.8008, lon: -1.5491, big: false,
    streets: [['Briggate', 'LS1 6HD'], ['Albion Street', 'LS1 5AA']] },
  { market: 'GB', code: 'GLA', name: 'Glasgow', region: 'Scotland', lat: 55.8642, lon: -4.2518, big: false,
    streets: [['Buchanan Street', 'G1 2FF'], ['Sauchiehall Street', 'G2 3EW']] },
  { market: 'GB', code: 'EDI', name: 'Edinburgh', region: 'Scotland', lat: 55.9533, lon: -3.1883, big: false,
    streets: [['Princes Street', 'EH2 2AN'], ['George Street', 'EH2 2PF']] },
  { market: 'GB', code: 'BRS', name: 'Bristol', region: 'England', lat: 51.4545, lon: -2.5879, big: false,
    streets: [['Broadmead', 'BS1 3HX']] },
  { market: 'GB', code: 'LPL', name: 'Liverpool', region: 'England', lat: 53.4084, lon: -2.9916, big: false,
    streets: [['Church Street', 'L1 1DA']] },
];

interface Warehouse {
  id: string;
  name: string;
  market: MarketCode;
  lat: number;
  lon: number;
  address: { line1: string; postalCode: string; city: string; region: string };
}

const WAREHOUSES: readonly Warehouse[] = [
  {
    id: 'DE-ERF-DC1',
    name: `${RETAILER_NAME} Distribution Centre Erfurt`,
    market: 'DE',
    lat: 50.8824,
    lon: 10.9452,
    address: {
      line1: 'Ohrdrufer Straße 12',
      postalCode: '99334',
      city: 'Amt Wachsenburg',
      region: 'Thüringen',
    },
  },
  {
    id: 'SE-JKG-DC1',
    name: `${RETAILER_NAME} Distribution Centre Jönköping`,
    market: 'SE',
    lat: 57.7498,
    lon: 14.1021,
    address: {
      line1: 'Logistikvägen 8',
      postalCode: '553 03',
      city: 'Jönköping',
      region: 'Jönköpings län',
    },
  },
];

interface Colour {
  code: string;
  key: string;
  name: Words;
}

// prettier-ignore
const COLOURS: readonly Colour[] = [
  { code: 'BLK', key: 'black', name: { 'de-DE': 'Schwarz', 'sv-SE': 'Svart', 'en-GB': 'Black' } },
  { code: 'WHT', key: 'white', name: { 'de-DE': 'Weiß', 'sv-SE': 'Vit', 'en-GB': 'White' } },
  { code: 'NVY', key: 'navy', name: { 'de-DE': 'Marineblau', 'sv-SE': 'Marinblå', 'en-GB': 'Navy' } },
  { code: 'BLU', key: 'blue', name: { 'de-DE': 'Blau', 'sv-SE': 'Blå', 'en-GB': 'Blue' } },
  { code: 'RED', key: 'red', name: { 'de-DE': 'Rot', 'sv-SE': 'Röd', 'en-GB': 'Red' } },
  { code: 'ORG', key: 'orange', name: { 'de-DE': 'Orange', 'sv-SE': 'Orange', 'en-GB': 'Orange' } },
  { code: 'GRY', key: 'grey', name: { 'de-DE': 'Grau', 'sv-SE': 'Grå', 'en-GB': 'Grey' } },
  { code: 'GRN', key: 'green', name: { 'de-DE': 'Grün', 'sv-SE': 'Grön', 'en-GB': 'Green' } },
  { code: 'OLV', key: 'olive', name: { 'de-DE': 'Oliv', 'sv-SE': 'Olivgrön', 'en-GB': 'Olive' } },
  { code: 'SND', key: 'sand', name: { 'de-DE': 'Sand', 'sv-SE': 'Sand', 'en-GB': 'Sand' } },
  { code: 'PNK', key: 'pink', name: { 'de-DE': 'Pink', 'sv-SE': 'Rosa', 'en-GB': 'Pink' } },
  { code: 'YLW', key: 'yellow', name: { 'de-DE': 'Gelb', 'sv-SE': 'Gul', 'en-GB': 'Yellow' } },
];

/** Material: attribute key, plus the phrase used in descriptions ("aus Mesh", "av mesh"). */
const MATERIALS: Record<string, Words> = {
  mesh: { 'de-DE': 'Mesh', 'sv-SE': 'mesh', 'en-GB': 'mesh' },
  'recycled polyester': {
    'de-DE': 'recyceltem Polyester',
    'sv-SE': 'återvunnen polyester',
    'en-GB': 'recycled polyester',
  },
  nylon: { 'de-DE': 'Nylon', 'sv-SE': 'nylon', 'en-GB': 'nylon' },
  leather: { 'de-DE': 'Leder', 'sv-SE': 'läder', 'en-GB': 'leather' },
  'merino wool': { 'de-DE': 'Merinowolle', 'sv-SE': 'merinoull', 'en-GB': 'merino wool' },
  cotton: { 'de-DE': 'Baumwolle', 'sv-SE': 'bomull', 'en-GB': 'cotton' },
};

type Gender = 'women' | 'men' | 'unisex';
const GENDERS: Record<Gender, Words> = {
  women: { 'de-DE': 'Damen', 'sv-SE': 'dam', 'en-GB': 'women' },
  men: { 'de-DE': 'Herren', 'sv-SE': 'herr', 'en-GB': 'men' },
  unisex: { 'de-DE': 'Unisex', 'sv-SE': 'unisex', 'en-GB': 'unisex' },
};

interface Category {
  path: string;
  /** Product nouns; one is picked per product. */
  nouns: Words[];
  /** Size run in order; SKU codes use the size as is, so sizes are identifier-safe. */
  sizes: string[];
  /** A narrower size run for some genders (women's shoes stop at 43, men's start at 40). */
  genderSizes?: Partial<Record<Gender, string[]>>;
  /** Colour codes offered; sizes × colours must reach 12. */
  palette: string[];
  materials: string[];
  genders: Gender[];
  /** EUR list price range in whole euros, stepped by 5 (prices end in .95). */
  eur: [min: number, max: number];
}

const SHOE_SIZES = ['36', '37', '38', '39', '40', '41', '42', '43', '44', '45', '46', '47'];
const SHOE_GENDER_SIZES = { women: SHOE_SIZES.slice(0, 8), men: SHOE_SIZES.slice(4) };
const LETTER_SIZES = ['XS', 'S', 'M', 'L', 'XL', 'XXL'];
const ALL_GENDERS: Gender[] = ['women', 'men', 'unisex'];

const CATEGORIES: readonly Category[] = [
  {
    path: 'shoes/running',
    nouns: [
      { 'de-DE': 'Laufschuh', 'sv-SE': 'Löparsko', 'en-GB': 'Running Shoe' },
      { 'de-DE': 'Straßenlaufschuh', 'sv-SE': 'Landsvägssko', 'en-GB': 'Road Running Shoe' },
    ],
    sizes: SHOE_SIZES,
    genderSizes: SHOE_GENDER_SIZES,
    palette: ['BLK', 'WHT', 'NVY', 'BLU', 'RED', 'ORG', 'GRY', 'PNK', 'YLW'],
    materials: ['mesh', 'recycled polyester'],
    genders: ALL_GENDERS,
    eur: [80, 190],
  },
  {
    path: 'shoes/trail',
    nouns: [
      { 'de-DE': 'Trailschuh', 'sv-SE': 'Trailsko', 'en-GB': 'Trail Shoe' },
      { 'de-DE': 'Trailrunningschuh', 'sv-SE': 'Terränglöparsko', 'en-GB': 'Trail Running Shoe' },
    ],
    sizes: SHOE_SIZES,
    genderSizes: SHOE_GENDER_SIZES,
    palette: ['BLK', 'OLV', 'GRY', 'ORG', 'BLU', 'SND', 'GRN'],
    materials: ['mesh', 'nylon'],
    genders: ALL_GENDERS,
    eur: [100, 200],
  },
  {
    path: 'shoes/hiking',
    nouns: [
      { 'de-DE': 'Wanderschuh', 'sv-SE': 'Vandringssko', 'en-GB': 'Hiking Shoe' },
      { 'de-DE': 'Wanderstiefel', 'sv-SE': 'Vandringskänga', 'en-GB': 'Hiking Boot' },
    ],
    sizes: SHOE_SIZES,
    genderSizes: SHOE_GENDER_SIZES,
    palette: ['BLK', 'SND', 'OLV', 'GRY', 'NVY', 'GRN'],
    materials: ['leather', 'nylon'],
    genders: ALL_GENDERS,
    eur: [120, 250],
  },
  {
    path: 'apparel/tops',
    nouns: [
      { 'de-DE': 'Laufshirt', 'sv-SE': 'Löpartröja', 'en-GB': 'Running Tee' },
      { 'de-DE': 'Funktionsshirt', 'sv-SE': 'Funktionströja', 'en-GB': 'Training Top' },
      { 'de-DE': 'Langarmshirt', 'sv-SE': 'Långärmad tröja', 'en-GB': 'Long Sleeve Top' },
    ],
    sizes: LETTER_SIZES,
    palette: ['BLK', 'WHT', 'NVY', 'BLU', 'RED', 'GRY', 'GRN', 'PNK', 'YLW'],
    materials: ['recycled polyester', 'merino wool', 'cotton'],
    genders: ALL_GENDERS,
    eur: [25, 80],
  },
  {
    path: 'apparel/jackets',
    nouns: [
      { 'de-DE': 'Regenjacke', 'sv-SE': 'Regnjacka', 'en-GB': 'Rain Jacket' },
      { 'de-DE': 'Softshelljacke', 'sv-SE': 'Softshelljacka', 'en-GB': 'Softshell Jacket' },
      { 'de-DE': 'Daunenjacke', 'sv-SE': 'Dunjacka', 'en-GB': 'Down Jacket' },
      { 'de-DE': 'Windjacke', 'sv-SE': 'Vindjacka', 'en-GB': 'Wind Jacket' },
    ],
    sizes: LETTER_SIZES,
    palette: ['BLK', 'NVY', 'OLV', 'RED', 'GRY', 'SND', 'BLU'],
    materials: ['nylon', 'recycled polyester'],
    genders: ALL_GENDERS,
    eur: [90, 300],
  },
  {
    path: 'apparel/pants',
    nouns: [
      { 'de-DE': 'Lauftights', 'sv-SE': 'Löpartights', 'en-GB': 'Running Tights' },
      { 'de-DE': 'Wanderhose', 'sv-SE': 'Vandringsbyxor', 'en-GB': 'Hiking Trousers' },
      { 'de-DE': 'Trainingshose', 'sv-SE': 'Träningsbyxor', 'en-GB': 'Track Pants' },
    ],
    sizes: LETTER_SIZES,
    palette: ['BLK', 'NVY', 'GRY', 'OLV', 'SND', 'BLU'],
    materials: ['recycled polyester', 'nylon', 'cotton'],
    genders: ALL_GENDERS,
    eur: [45, 130],
  },
  {
    path: 'apparel/shorts',
    nouns: [
      { 'de-DE': 'Laufshorts', 'sv-SE': 'Löparshorts', 'en-GB': 'Running Shorts' },
      { 'de-DE': 'Trainingsshorts', 'sv-SE': 'Träningsshorts', 'en-GB': 'Training Shorts' },
    ],
    sizes: LETTER_SIZES,
    palette: ['BLK', 'NVY', 'GRY', 'BLU', 'RED', 'GRN'],
    materials: ['recycled polyester', 'nylon'],
    genders: ALL_GENDERS,
    eur: [25, 60],
  },
  {
    path: 'accessories/bags',
    nouns: [
      { 'de-DE': 'Rucksack', 'sv-SE': 'Ryggsäck', 'en-GB': 'Backpack' },
      { 'de-DE': 'Sporttasche', 'sv-SE': 'Sportbag', 'en-GB': 'Duffel Bag' },
      { 'de-DE': 'Laufweste', 'sv-SE': 'Löparväst', 'en-GB': 'Running Vest' },
    ],
    sizes: ['10L', '20L', '30L'],
    palette: ['BLK', 'NVY', 'OLV', 'GRY', 'RED', 'SND'],
    materials: ['nylon', 'recycled polyester'],
    genders: ['unisex'],
    eur: [30, 150],
  },
  {
    path: 'accessories/socks',
    nouns: [
      { 'de-DE': 'Laufsocken', 'sv-SE': 'Löparstrumpor', 'en-GB': 'Running Socks' },
      { 'de-DE': 'Wandersocken', 'sv-SE': 'Vandringsstrumpor', 'en-GB': 'Hiking Socks' },
    ],
    sizes: ['35-38', '39-42', '43-46'],
    palette: ['BLK', 'WHT', 'GRY', 'NVY', 'ORG', 'PNK'],
    materials: ['merino wool', 'cotton', 'recycled polyester'],
    genders: ['unisex'],
    eur: [10, 25],
  },
  {
    path: 'accessories/caps',
    nouns: [
      { 'de-DE': 'Laufkappe', 'sv-SE': 'Löparkeps', 'en-GB': 'Running Cap' },
      { 'de-DE': 'Mütze', 'sv-SE': 'Mössa', 'en-GB': 'Beanie' },
    ],
    sizes: ['S-M', 'L-XL'],
    palette: ['BLK', 'WHT', 'NVY', 'GRY', 'RED', 'OLV', 'YLW'],
    materials: ['recycled polyester', 'merino wool', 'cotton'],
    genders: ['unisex'],
    eur: [15, 40],
  },
];

const BRANDS = ['Nordvik', 'Stridr', 'Alpenkamm', 'Fjällpeak', 'Runhaven', 'Kestrel'];
// prettier-ignore
const MODEL_NAMES = [
  'Aero', 'Pulse', 'Vento', 'Tempo', 'Ridge', 'Fjord', 'Storm', 'Glide',
  'Summit', 'Apex', 'Drift', 'Nova', 'Tundra', 'Swift', 'Boreal', 'Halo',
];
const MODEL_SUFFIXES = ['', '2', '3', 'Pro', 'Lite', 'Plus', 'Evo', 'X'];

/** Exchange rates used to derive the SEK and GBP list prices from the EUR price. */
const SEK_PER_EUR = 11.5;
const GBP_PER_EUR = 0.87;

/** Fictional GS1 company prefix (6 digits) followed by a 6-digit item reference. */
const GTIN_BASE = 406_999_000_000;
const MAX_SKUS = 999_999;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

type Rng = () => number;

/** mulberry32: a tiny, fast 32-bit seeded PRNG returning floats in [0, 1). */
export function mulberry32(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Integer in [min, max], both inclusive. */
const intBetween = (rng: Rng, min: number, max: number): number =>
  min + Math.floor(rng() * (max - min + 1));

function pick<T>(rng: Rng, items: readonly T[]): T {
  const item = items[Math.floor(rng() * items.length)];
  if (item === undefined) throw new RangeError('pick from an empty list');
  return item;
}

/** A seeded Fisher–Yates shuffle (returns a copy). */
function shuffled<T>(rng: Rng, items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const a = out[i];
    const b = out[j];
    if (a === undefined || b === undefined) continue;
    out[i] = b;
    out[j] = a;
  }
  return out;
}

/** Exactly `count` distinct indices out of 0..n-1. */
function pickIndices(rng: Rng, n: number, count: number): Set<number> {
  const indices = Array.from({ length: n }, (_, i) => i);
  return new Set(shuffled(rng, indices).slice(0, count));
}

const round6 = (x: number): number => Math.round(x * 1e6) / 1e6;

/** Moves a point `metres` in direction `bearing` (radians, 0 = north). */
function offset(lat: number, lon: number, metres: number, bearing: number): Location['geo'] {
  const metresPerDegree = 111_320;
  const dLat = (metres * Math.cos(bearing)) / metresPerDegree;
  const dLon = (metres * Math.sin(bearing)) / (metresPerDegree * Math.cos((lat * Math.PI) / 180));
  return { lat: round6(lat + dLat), lon: round6(lon + dLon) };
}

/**
 * GTIN-13 from a 12-digit payload: zero-pads `n` to 12 digits and appends the GS1 check digit
 * (weights 1,3,1,3,... from the left, check = (10 - sum mod 10) mod 10).
 */
export function gtin13(n: number): string {
  if (!Number.isSafeInteger(n) || n < 0 || n >= 1e12) {
    throw new RangeError(`gtin13 needs an integer in [0, 10^12), got ${n}`);
  }
  const payload = String(n).padStart(12, '0');
  let sum = 0;
  for (let i = 0; i < 12; i++) sum += Number(payload[i]) * (i % 2 === 0 ? 1 : 3);
  return payload + String((10 - (sum % 10)) % 10);
}

/** Formats integer minor units as a decimal string: 8995 with 2 decimals → "89.95". */
function formatMinor(minor: number, decimals: number): string {
  if (decimals === 0) return String(minor);
  const digits = String(minor).padStart(decimals + 1, '0');
  return `${digits.slice(0, -decimals)}.${digits.slice(-decimals)}`;
}

/** List prices in all three markets from a whole-euro base (a multiple of 5). */
function marketPrices(eurWhole: number): NonNullable<Sku['prices']> {
  const eur = eurWhole * 100 - 5; // 90 → 89.95
  const sek = (Math.round((eurWhole * SEK_PER_EUR) / 50) * 50 - 1) * 100; // 80 → 899.00
  const gbp = Math.round(eurWhole * GBP_PER_EUR) * 100 - 1; // 92 → 79.99
  const price = (marketCode: MarketCode, currency: string, minor: number) => ({
    marketCode,
    price: { currency, amount: formatMinor(minor, CURRENCY_DECIMALS[currency] ?? 2) },
  });
  return [price('DE', 'EUR', eur), price('SE', 'SEK', sek), price('GB', 'GBP', gbp)];
}

const localized = (f: (lang: Lang) => string): Words => ({
  'de-DE': f('de-DE'),
  'sv-SE': f('sv-SE'),
  'en-GB': f('en-GB'),
});

// ---------------------------------------------------------------------------------------------
// Builders
// ---------------------------------------------------------------------------------------------

function buildStores(rng: Rng): Location[] {
  const slots = CITIES.flatMap((city) => city.streets.map((street, k) => ({ city, street, k })));
  const shipping = pickIndices(rng, slots.length, Math.round(slots.length / 2));
  const offline = pickIndices(rng, slots.length, Math.round(slots.length / 3));

  return slots.map(({ city, street: [street, postalCode], k }, i): Location => {
    const profile = MARKET_PROFILES[city.market];
    const n = city.streets.length;
    // Spread a city's stores around its centre: own sector each, 250–800 m out.
    const bearing = (2 * Math.PI * (k + 0.25 + rng() * 0.5)) / n;
    const geo = offset(city.lat, city.lon, 250 + rng() * 550, bearing);
    const houseNumber = intBetween(rng, 1, 120);
    const capabilities: Location['capabilities'] = ['pickup'];
    if (shipping.has(i)) capabilities.push('ship');
    if (city.big) capabilities.push('same-day');
    capabilities.push('returns');
    return {
      id: `${city.market}-${city.code}-${String(k + 1).padStart(3, '0')}`,
      name: `${RETAILER_NAME} ${city.name} ${street}`,
      type: 'store',
      marketCode: city.market,
      geo,
      address: {
        line1: profile.numberFirst ? `${houseNumber} ${street}` : `${street} ${houseNumber}`,
        postalCode,
        city: city.name,
        region: city.region,
        country: city.market,
      },
      timeZone: profile.timeZone,
      openingHours: profile.hours.map((h) => ({ ...h })),
      capabilities,
      capacity: { ordersPerHour: city.big ? intBetween(rng, 25, 60) : intBetween(rng, 10, 40) },
      allowNegativeStock: offline.has(i),
      status: 'active',
    };
  });
}

function buildWarehouses(rng: Rng): Location[] {
  return WAREHOUSES.map((w): Location => ({
    id: w.id,
    name: w.name,
    type: 'warehouse',
    marketCode: w.market,
    geo: { lat: w.lat, lon: w.lon },
    address: { ...w.address, country: w.market },
    timeZone: MARKET_PROFILES[w.market].timeZone,
    capabilities: ['ship', 'returns'],
    capacity: { ordersPerHour: intBetween(rng, 20, 50) * 100 },
    allowNegativeStock: false,
    status: 'active',
  }));
}

/** How many SKUs the next product gets: 2–12, landing exactly on the target. */
function nextSkuCount(rng: Rng, remaining: number): number {
  if (remaining <= 12) return remaining;
  const count = intBetween(rng, 2, 12);
  return remaining - count === 1 ? count - 1 : count; // never leave a single SKU over
}

function buildProduct(rng: Rng, index: number, skuCount: number, firstSku: number): Product {
  const category = pick(rng, CATEGORIES);
  const noun = pick(rng, category.nouns);
  const brand = pick(rng, BRANDS);
  const model = [pick(rng, MODEL_NAMES), pick(rng, MODEL_SUFFIXES)].filter(Boolean).join(' ');
  const material = pick(rng, category.materials);
  const gender = pick(rng, category.genders);
  const [minEur, maxEur] = category.eur;
  const prices = marketPrices(intBetween(rng, minEur / 5, maxEur / 5) * 5);

  // A size × colour grid, colour by colour, cut off at skuCount.
  const sizes = category.genderSizes?.[gender] ?? category.sizes;
  const minColours = Math.ceil(skuCount / sizes.length);
  const maxColours = Math.max(minColours, Math.min(4, skuCount, category.palette.length));
  const colourCount = intBetween(rng, minColours, maxColours);
  const sizeCount = Math.ceil(skuCount / colourCount);
  const firstSize = intBetween(rng, 0, sizes.length - sizeCount);
  const sizeRun = sizes.slice(firstSize, firstSize + sizeCount);
  const colours = shuffled(rng, category.palette)
    .slice(0, colourCount)
    .map((code) => COLOURS.find((c) => c.code === code))
    .filter((c): c is Colour => c !== undefined);
  const grid = colours.flatMap((colour) => sizeRun.map((size) => ({ colour, size })));
  if (grid.length < skuCount) throw new RangeError(`${category.path}: not enough variants`);

  const id = `P-${String(index + 1).padStart(6, '0')}`;
  const name = localized((lang) => `${model} ${noun[lang]}`);
  return {
    id,
    name,
    description: localized((lang) => {
      const what = `${noun[lang]} (${GENDERS[gender][lang]})`;
      const made = MATERIALS[material]?.[lang] ?? material;
      if (lang === 'de-DE') return `${what} von ${brand} aus ${made}.`;
      if (lang === 'sv-SE') return `${what} från ${brand} av ${made}.`;
      return `${what} by ${brand}, made of ${made}.`;
    }),
    brand,
    category: category.path,
    attributes: { gender, material },
    skus: grid.slice(0, skuCount).map(({ colour, size }, v): Sku => ({
      sku: `${id}-${colour.code}-${size}`,
      gtin: gtin13(GTIN_BASE + firstSku + v),
      name: localized((lang) => `${name[lang]}, ${colour.name[lang]}, ${size}`),
      attributes: { size, colour: colour.key, material, gender },
      prices,
      status: 'active',
    })),
    status: 'active',
  };
}

function buildProducts(rng: Rng, skuTarget: number): Product[] {
  const products: Product[] = [];
  let made = 0;
  while (made < skuTarget) {
    const count = nextSkuCount(rng, skuTarget - made);
    products.push(buildProduct(rng, products.length, count, made));
    made += count;
  }
  return products;
}

/**
 * The demo retailer: 3 markets, 60 stores and 2 warehouses, and products totalling exactly
 * `skuTarget` SKUs (default 2000). Locations depend only on the seed, not on the SKU target.
 */
export function buildDemoRetailer(options: { skuTarget?: number; seed?: number } = {}): {
  markets: Market[];
  locations: Location[];
  products: Product[];
} {
  const skuTarget = options.skuTarget ?? DEFAULT_SKU_TARGET;
  const seed = options.seed ?? DEFAULT_SEED;
  if (!Number.isInteger(skuTarget) || skuTarget < 0 || skuTarget > MAX_SKUS) {
    throw new RangeError(`skuTarget must be an integer in [0, ${MAX_SKUS}], got ${skuTarget}`);
  }
  if (!Number.isInteger(seed)) throw new RangeError(`seed must be an integer, got ${seed}`);

  // Separate streams, so that changing the SKU target does not move the stores.
  const locationRng = mulberry32(seed ^ 0x10ca7e);
  const productRng = mulberry32(seed ^ 0x9a0d0c);
  return {
    markets: DEMO_MARKETS.map((m) => ({
      ...m,
      locales: [...m.locales],
      channels: [...m.channels],
    })),
    locations: [...buildStores(locationRng), ...buildWarehouses(locationRng)],
    products: buildProducts(productRng, skuTarget),
  };
}
