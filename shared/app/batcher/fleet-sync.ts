import type { Component } from "../../core/routes.ts";
import type { FleetView } from "../../ports.ts";
import type { Logger } from "../logger.ts";

/**
 * How often the batcher re-reads how many copies each component runs: autoscaling changes them.
 * DescribeInferenceComponent costs nothing; a copy that started is fed within this.
 */
export const COPIES_REFRESH_MS = 2_000;

/**
 * The copies each of a route's components runs now (routes.yml's count until first read), and
 * which of them are warming: left alone for the route's recheck period.
 */
export class FleetSync {
  readonly #fleet: FleetView;
  readonly #logger: Logger;
  readonly #recheckMs: number;
  #components: readonly Component[];
  #readAtMs = Number.NEGATIVE_INFINITY;
  readonly #warmingUntil = new Map<string, number>();

  constructor(deps: { readonly fleet: FleetView; readonly logger: Logger }, components: readonly Component[], recheckMs: number) {
    this.#fleet = deps.fleet;
    this.#logger = deps.logger;
    this.#components = components;
    this.#recheckMs = recheckMs;
  }

  get components(): readonly Component[] {
    return this.#components;
  }

  /** Until when the component is left alone (0: it is not warming). */
  warmingUntilMs(component: string): number {
    return this.#warmingUntil.get(component) ?? 0;
  }

  markWarming(component: string, nowMs: number): void {
    this.#warmingUntil.set(component, nowMs + this.#recheckMs);
  }

  /**
   * Re-reads the copies when due. A component whose autoscaling is starting its first copy is
   * warming: its jobs wait in the queue rather than fail. One at zero that nobody woke is still
   * sent a job: its "no capacity" answer is what raises the alarm that wakes it.
   */
  async refresh(nowMs: number): Promise<void> {
    if (nowMs - this.#readAtMs < COPIES_REFRESH_MS) return;
    this.#readAtMs = nowMs;
    this.#components = await Promise.all(this.#components.map((component) => this.#reread(component, nowMs)));
  }

  async #reread(component: Component, nowMs: number): Promise<Component> {
    try {
      const { current, desired } = await this.#fleet.copies(component);
      if (current === 0 && desired > 0) this.markWarming(component.name, nowMs);
      // A copy serves: whatever said "warming" before no longer holds, and the copy is fed now.
      else if (current > 0) this.#warmingUntil.delete(component.name);
      return current === component.copies ? component : { ...component, copies: current };
    } catch (error) {
      this.#logger.warn("could not read the component's copies; keeping the last count", { component: component.name, error: String(error) });
      return component;
    }
  }
}
