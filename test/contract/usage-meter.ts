import { expect, it } from "vitest";
import type { UsageMeter } from "#shared/ports";
import { uniqueSuffix } from "../helpers/local-aws.ts";

const newTenant = () => `tenant-${uniqueSuffix()}`;
const minute = 29_000_000;

export function usageMeterContract(makeMeter: () => Promise<UsageMeter>): void {
  it("takes job slots up to the limit and refuses the take that would pass it, which takes nothing", async () => {
    // Prepare
    const meter = await makeMeter();
    const tenant = newTenant();

    // Act
    const taken = [await meter.takeJobs(tenant, 3, 5), await meter.takeJobs(tenant, 3, 5), await meter.takeJobs(tenant, 2, 5), await meter.takeJobs(tenant, 1, 5)];

    // Assess: the refused take of 3 left room for exactly 2 more
    expect(taken).toEqual([true, false, true, false]);
  });

  it("never passes the limit under concurrent takes", async () => {
    // Prepare
    const meter = await makeMeter();
    const tenant = newTenant();

    // Act
    const taken = await Promise.all(Array.from({ length: 12 }, () => meter.takeJobs(tenant, 1, 5)));

    // Assess
    expect(taken.filter(Boolean)).toHaveLength(5);
    expect(await meter.takeJobs(tenant, 1, 5)).toBe(false);
  });

  it("makes room again for the job slots given back", async () => {
    // Prepare
    const meter = await makeMeter();
    const tenant = newTenant();
    await meter.takeJobs(tenant, 5, 5);

    // Act
    await meter.giveBackJobs(tenant, 2);

    // Assess
    expect(await meter.takeJobs(tenant, 3, 5)).toBe(false);
    expect(await meter.takeJobs(tenant, 2, 5)).toBe(true);
    expect(await meter.takeJobs(tenant, 1, 5)).toBe(false);
  });

  it("refuses more than the limit at once, on a fresh counter and on one given back below zero", async () => {
    // Prepare
    const meter = await makeMeter();
    const [fresh, overGiven] = [newTenant(), newTenant()];
    await meter.giveBackJobs(overGiven, 4);

    // Act
    const takes = [await meter.takeJobs(fresh, 6, 5), await meter.takeJobs(overGiven, 6, 5), await meter.chargeTokens(fresh, minute, 101, 100)];

    // Assess
    expect(takes).toEqual([false, false, false]);
  });

  it("keeps each tenant's job slots apart", async () => {
    // Prepare
    const meter = await makeMeter();
    const [full, other] = [newTenant(), newTenant()];
    await meter.takeJobs(full, 5, 5);

    // Act
    const taken = await meter.takeJobs(other, 5, 5);

    // Assess
    expect(taken).toBe(true);
    expect(await meter.takeJobs(full, 1, 5)).toBe(false);
  });

  it("charges tokens to a minute up to the limit; the next minute starts empty, and job slots are counted apart", async () => {
    // Prepare
    const meter = await makeMeter();
    const tenant = newTenant();

    // Act
    const charges = [await meter.chargeTokens(tenant, minute, 60, 100), await meter.chargeTokens(tenant, minute, 41, 100), await meter.chargeTokens(tenant, minute, 40, 100)];
    const nextMinute = await meter.chargeTokens(tenant, minute + 1, 100, 100);
    const jobs = await meter.takeJobs(tenant, 5, 5);

    // Assess
    expect(charges).toEqual([true, false, true]);
    expect(nextMinute).toBe(true);
    expect(jobs).toBe(true);
    expect(await meter.chargeTokens(tenant, minute, 1, 100)).toBe(false);
  });

  it("makes room in a minute for the tokens refunded", async () => {
    // Prepare
    const meter = await makeMeter();
    const tenant = newTenant();
    await meter.chargeTokens(tenant, minute, 100, 100);

    // Act
    await meter.refundTokens(tenant, minute, 30);

    // Assess
    expect(await meter.chargeTokens(tenant, minute, 31, 100)).toBe(false);
    expect(await meter.chargeTokens(tenant, minute, 30, 100)).toBe(true);
  });
}
