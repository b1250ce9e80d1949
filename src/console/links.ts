/** Addresses into the console that other parts of the relay hand out (alerts link to them). */

/** The anchor of a destination's card on /console/destinations. */
export const destinationAnchor = (name: string): string => `destination-${name}`;

/** The console page about `destination` (or the overview), under the relay's public URL. */
export function consolePage(
  publicUrl: string,
  page: "overview" | "destination" | "dead-letters",
  destination = "",
): string {
  const d = encodeURIComponent(destination);
  if (page === "overview") return `${publicUrl}/console`;
  if (page === "dead-letters") return `${publicUrl}/console/dead-letters?destination=${d}`;
  return `${publicUrl}/console/destinations#${destinationAnchor(d)}`;
}
