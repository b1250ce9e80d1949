/**
 * The sample calls of fixtures/extend/, bundled into the Worker for the console's "Try a payload" (a few KB).
 * Imported as JSON, the one way esbuild (the Worker's bundle) and Vite (the tests) both read alike: a
 * `with { type: "text" }` import is text to esbuild but an object to Vite. So the console shows each sample
 * re-indented rather than byte for byte.
 */
import AvailableBalanceChanged from "../../fixtures/extend/AvailableBalanceChanged.json";
import BalanceChanged from "../../fixtures/extend/BalanceChanged.json";
import CustomerChanged from "../../fixtures/extend/CustomerChanged.json";
import CustomerCreated from "../../fixtures/extend/CustomerCreated.json";
import CustomerInvoiceChanged from "../../fixtures/extend/CustomerInvoiceChanged.json";
import CustomerInvoiceCreated from "../../fixtures/extend/CustomerInvoiceCreated.json";
import Multi from "../../fixtures/extend/multi.json";
import OfferChanged from "../../fixtures/extend/OfferChanged.json";
import OfferCreated from "../../fixtures/extend/OfferCreated.json";
import OrderCancelled from "../../fixtures/extend/OrderCancelled.json";
import OrderCreated from "../../fixtures/extend/OrderCreated.json";
import OrderDeliveryDataChanged from "../../fixtures/extend/OrderDeliveryDataChanged.json";
import OrderPicked from "../../fixtures/extend/OrderPicked.json";
import OrderReserved from "../../fixtures/extend/OrderReserved.json";
import PickingStarted from "../../fixtures/extend/PickingStarted.json";
import PriceListWebHook from "../../fixtures/extend/PriceListWebHook.json";
import ProductChanged from "../../fixtures/extend/ProductChanged.json";
import ProductCreated from "../../fixtures/extend/ProductCreated.json";
import PurchaseCancelled from "../../fixtures/extend/PurchaseCancelled.json";
import PurchaseCreated from "../../fixtures/extend/PurchaseCreated.json";
import PurchaseDelivered from "../../fixtures/extend/PurchaseDelivered.json";
import PurchasePartiallyDelivered from "../../fixtures/extend/PurchasePartiallyDelivered.json";
import Unicode from "../../fixtures/extend/unicode.json";
import UnknownActionExtraFields from "../../fixtures/extend/unknown-action-extra-fields.json";

export const SAMPLES: ReadonlyMap<string, unknown> = new Map<string, unknown>([
  ["AvailableBalanceChanged", AvailableBalanceChanged],
  ["BalanceChanged", BalanceChanged],
  ["CustomerChanged", CustomerChanged],
  ["CustomerCreated", CustomerCreated],
  ["CustomerInvoiceChanged", CustomerInvoiceChanged],
  ["CustomerInvoiceCreated", CustomerInvoiceCreated],
  ["OfferChanged", OfferChanged],
  ["OfferCreated", OfferCreated],
  ["OrderCancelled", OrderCancelled],
  ["OrderCreated", OrderCreated],
  ["OrderDeliveryDataChanged", OrderDeliveryDataChanged],
  ["OrderPicked", OrderPicked],
  ["OrderReserved", OrderReserved],
  ["PickingStarted", PickingStarted],
  ["PriceListWebHook", PriceListWebHook],
  ["ProductChanged", ProductChanged],
  ["ProductCreated", ProductCreated],
  ["PurchaseCancelled", PurchaseCancelled],
  ["PurchaseCreated", PurchaseCreated],
  ["PurchaseDelivered", PurchaseDelivered],
  ["PurchasePartiallyDelivered", PurchasePartiallyDelivered],
  ["multi", Multi],
  ["unicode", Unicode],
  ["unknown-action-extra-fields", UnknownActionExtraFields],
]);

/** A sample as the editor shows it. */
export function sampleText(name: string): string | undefined {
  const sample = SAMPLES.get(name);
  return sample === undefined ? undefined : JSON.stringify(sample, null, 2);
}
