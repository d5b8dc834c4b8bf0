// What the demo and the labs do when the GPU device of the page's runtime is lost: the device
// line says so and offers "Continue on the CPU", which opens a CPU runtime (same worker
// choice), forgets the models of the lost runtime and loads the chosen ones again on the CPU.

import { Runtime } from 'webnlu';
import { forgetLoadedModels } from './model-picker.js';

/**
 * When the GPU device of `rt` is lost: `status` (the #device-status line) tells the visitor and
 * shows the button; `dataset` (of <body> or <html>) gets `deviceLost` = the reason. A click opens
 * `Runtime.create({ ...options, device: 'cpu' })`, hands its promise to `useRuntime` (which
 * gives it to the pickers and reloads their models), then shows `describe(cpuRuntime)`.
 */
export function offerCpuOnDeviceLoss(rt, { status, dataset, options, useRuntime, describe }) {
  rt.device.lost.then(({ reason, message }) => {
    dataset.deviceLost = reason;
    status.textContent = `The GPU device was lost (${reason}${message ? `: ${message}` : ''}); ` +
      'the models on it stopped working. ';
    const button = document.createElement('button');
    button.type = 'button';
    button.id = 'continue-on-cpu';
    button.textContent = 'Continue on the CPU';
    status.append(button);
    button.addEventListener('click', async () => {
      button.disabled = true;
      button.textContent = 'opening the CPU…';
      forgetLoadedModels();
      const cpu = Runtime.create({ ...options, device: 'cpu' });
      try {
        const cpuRuntime = await cpu;
        status.textContent = `${describe(cpuRuntime)} (the GPU was lost)`;
        await useRuntime(cpu);
        dataset.device = 'cpu';
        delete dataset.deviceLost;
      } catch (error) {
        status.textContent = `The CPU runtime could not start: ${error.message}`;
      } finally {
        rt.dispose();
      }
    }, { once: true });
  });
}
