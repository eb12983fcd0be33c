import { createPinia } from 'pinia';
import { createApp } from 'vue';

import App from './App.vue';
import { createAppI18n } from './i18n';
import { createAppVuetify } from './plugins/vuetify';
import './styles/main.css';

createApp(App)
  .use(createPinia())
  .use(createAppI18n())
  .use(createAppVuetify())
  .mount('#app');
