import { flushPromises, mount } from '@vue/test-utils';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { defineComponent, h } from 'vue';
import { VApp } from 'vuetify/components';

vi.mock('@tauri-apps/api/core', () => ({ invoke: vi.fn() }));

import { invoke } from '@tauri-apps/api/core';

import AuthForm from '@/components/auth/AuthForm.vue';

import { createTestPlugins } from '../../helpers/mount';

const invokeMock = vi.mocked(invoke);

// VMain needs the layout that VApp provides.
const Host = defineComponent({ render: () => h(VApp, () => h(AuthForm)) });

function mountForm() {
  const { plugins } = createTestPlugins();
  return mount(Host, { global: { plugins } });
}

beforeEach(() => {
  localStorage.clear();
  invokeMock.mockReset();
  invokeMock.mockImplementation(async (command: string) => {
    if (command === 'session_status') {
      return {
        logged_in: true,
        server_url: null,
        username: 'alice',
        user_id: 'u1',
        connection: { state: 'connecting' },
      };
    }
    return { user_id: 'u1', username: 'alice' };
  });
});

describe('AuthForm', () => {
  it('rejects a server without a scheme', async () => {
    const form = mountForm();
    await form.get('[data-test="server"] input').setValue('chat.example.com');
    await form.get('[data-test="login"] input').setValue('alice');
    await form.get('[data-test="password"] input').setValue('a long password');

    await form.get('form').trigger('submit');
    await flushPromises();

    expect(form.text()).toContain(
      'Enter a URL that starts with http:// or https://.',
    );
    expect(invokeMock).not.toHaveBeenCalled();
  });

  it('signs in with the typed values', async () => {
    const form = mountForm();
    await form
      .get('[data-test="server"] input')
      .setValue(' https://chat.example.com ');
    await form.get('[data-test="login"] input').setValue('alice');
    await form.get('[data-test="password"] input').setValue('a long password');

    await form.get('form').trigger('submit');
    await flushPromises();

    expect(invokeMock).toHaveBeenCalledWith('login', {
      server: 'https://chat.example.com',
      login: 'alice',
      password: 'a long password',
    });
    expect(invokeMock).toHaveBeenCalledWith('session_status');
  });

  it('shows the backend error message as it is', async () => {
    invokeMock.mockRejectedValue({
      code: 'rejected',
      message: 'The username or password is wrong.',
      server_code: 'invalid_credentials',
      retryable: false,
    });
    const form = mountForm();
    await form
      .get('[data-test="server"] input')
      .setValue('https://chat.example.com');
    await form.get('[data-test="login"] input').setValue('alice');
    await form.get('[data-test="password"] input').setValue('wrong password');

    await form.get('form').trigger('submit');
    await flushPromises();

    expect(form.get('[data-test="server-error"]').text()).toBe(
      'The username or password is wrong.',
    );
  });

  it('registers after checking each field', async () => {
    const form = mountForm();
    await form.get('[data-test="tab-register"]').trigger('click');
    await flushPromises();
    await form
      .get('[data-test="server"] input')
      .setValue('https://chat.example.com');
    await form.get('[data-test="username"] input').setValue('al');
    await form.get('[data-test="email"] input').setValue('alice@example');
    await form.get('[data-test="password"] input').setValue('short');

    await form.get('form').trigger('submit');
    await flushPromises();

    expect(form.text()).toContain(
      'The username must be 3 to 32 characters long.',
    );
    expect(form.text()).toContain(
      'Enter an email address like name@example.com.',
    );
    expect(form.text()).toContain(
      'The password must have at least 8 characters.',
    );
    expect(invokeMock).not.toHaveBeenCalled();

    await form.get('[data-test="username"] input').setValue('alice');
    await form.get('[data-test="email"] input').setValue('alice@example.com');
    await form.get('[data-test="password"] input').setValue('a long password');
    await form.get('form').trigger('submit');
    await flushPromises();

    expect(invokeMock).toHaveBeenCalledWith('register', {
      server: 'https://chat.example.com',
      username: 'alice',
      email: 'alice@example.com',
      password: 'a long password',
    });
  });
});
